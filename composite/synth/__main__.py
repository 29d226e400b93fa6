"""``python -m composite.synth OUTDIR ...``: write synthetic footage (see :mod:`composite.synth.write`)."""

import sys

from .write import main

if __name__ == "__main__":
    sys.exit(main())
