"""``python -m eval.generation`` = ``python -m mogen.evaluate.generation`` (see there)."""

import sys

from mogen.evaluate.generation import main

if __name__ == "__main__":
    sys.exit(main())
