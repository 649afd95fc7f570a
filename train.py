#!/usr/bin/env python
"""Train mogen's flow-matching generator (see ``python train.py --help``).

    python train.py                                  # tiny model, default navis data, a few minutes
    python train.py --model=base --max_minutes=60 --out_dir=runs/base
    python train.py --resume --out_dir=runs/base     # continue where it stopped
    torchrun --nproc_per_node=4 train.py --model=base  # several GPUs (or CPU processes), same script

The logic lives in :mod:`mogen.training`; this file only runs it.
"""

import sys

from mogen import training
from mogen.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("train.py", training))
