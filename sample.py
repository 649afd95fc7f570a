#!/usr/bin/env python
"""Sample fragments from a trained checkpoint (see ``python sample.py --help``).

    python sample.py --ckpt runs/tiny --n 64 --steps 20 --solver midpoint --out runs/samples

The logic lives in :mod:`mogen.sampling`; this file only parses the command line.
"""

import argparse
import sys

from mogen import sampling

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=sampling.DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sampling.add_arguments(parser)
    sys.exit(sampling.run(parser.parse_args()))
