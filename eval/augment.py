"""``python -m eval.augment`` = ``python -m mogen.evaluate.augment`` (see there)."""

import sys

from mogen.evaluate.augment import main

if __name__ == "__main__":
    sys.exit(main())
