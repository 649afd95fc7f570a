#!/usr/bin/env python
"""Sample fragments from a trained checkpoint or a bundled generator (see ``python sample.py --help``).

    python sample.py --ckpt runs/tiny --n 64 --steps 20 --out runs/samples
    python sample.py --pretrained navis-em --n 64 --out runs/samples

The logic lives in :mod:`mogen.sampling`; this file only runs it.
"""

import sys

from mogen import sampling
from mogen.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("sample.py", sampling))
