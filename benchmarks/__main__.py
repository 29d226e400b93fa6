"""``python -m benchmarks [--quick] [--suite NAME] [--json PATH] ...``"""

import sys

from benchmarks.harness import main

if __name__ == "__main__":
    sys.exit(main())
