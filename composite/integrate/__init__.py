"""Plate integration: light wrap, edge blend, lens defocus (uniform and by depth), haze, lens distortion.

Pure array functions (``(H, W, C)`` float32, scene-linear, premultiplied alpha), one module each:

========================  =====================================================================
module                    functions
========================  =====================================================================
``lightwrap``             :func:`~composite.integrate.lightwrap.light_wrap`
``edge_blend``            :func:`~composite.integrate.edge_blend.edge_blend`, ``edge_band``
``defocus``               ``defocus``, ``depth_defocus``, ``disc_kernel``, ``circle_of_confusion``
``haze``                  ``haze``, ``transmittance``
``lens``                  ``remove_distortion``, ``apply_distortion``, ``distort_points``,
                          ``undistort_points``, ``lens_maps``
========================  =====================================================================

Pipeline stages (LightWrap, EdgeBlend, Defocus, DepthDefocus, Haze, LensDistort) are in
:mod:`composite.integrate.stages`. (Functions are imported from their modules, e.g.
``from composite.integrate.defocus import defocus``: re-exporting them here would shadow the modules
of the same name.)
"""
