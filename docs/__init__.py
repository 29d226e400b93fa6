"""The documentation build of composite (``python -m docs.build``); see :mod:`docs.build`."""
