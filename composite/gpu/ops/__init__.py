"""Torch implementations of the hot pixel operations, with the NumPy functions' signatures.

Each module mirrors a NumPy module and takes float32 tensors (``(H, W, C)``, channels last, any device;
leading dimensions are a batch where the operation is per pixel): :mod:`.merge` (core.merge),
:mod:`.keying` (matte.keyers), :mod:`.despill`, :mod:`.matte` (matte.ops), :mod:`.color` (color.transfer,
grade, cdl), :mod:`.grain`, :mod:`.lightwrap`, :mod:`.defocus`, :mod:`.warp` (temporal.warp and
core.geometry.transform), :mod:`.deflicker` (gain application), :mod:`.crowd` (sprite drawing).
Importing this package imports torch.
"""
