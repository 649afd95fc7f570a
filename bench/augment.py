"""Timing of the augmentation stage: rendering, merge candidates, one classifier arm.

    python bench/augment.py [--data /tmp/data/navis] [--threads 1]

Prints one line per measurement (wall seconds and CPU seconds of this process). Uses the navis
example neurons (rendering) and a prepared dataset directory (candidates, training).
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import numpy as np


def timed(label: str, fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    print(f"{label:<58s} wall {time.perf_counter() - w:7.2f} s   cpu {time.process_time() - c:7.2f} s", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/tmp/data/navis", help="dataset directory from `mogen prepare`")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=1000, help="classifier steps (eval.augment default)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from mogen.evaluate.classifier import score, train_classifier
    from mogen.augment.cli import _navis_block
    from mogen.augment.em import em_raw
    from mogen.augment.examples import build_candidates
    from mogen.augment.render import pack_fragments
    from mogen.data import read_split

    r = SimpleNamespace(extent=8.0, voxel_size=[80.0, 40.0, 40.0], closing=None, seed=0)
    labels, grid, _ = timed("render navis block 8 µm cube, 80x40x40 nm (labels)", lambda: _navis_block(r))
    print(f"    {labels.size / 1e6:.1f} M voxels, {len(np.unique(labels)) - 1} objects")
    timed("EM-like raw for that block", lambda: em_raw(labels, grid.voxel_nm, seed=0))
    train = read_split(args.data, "train")
    pts, ids = train.points, train.neuron_id
    R = 10.0
    timed("render 6 packed fragments, 8 µm cube, 80x40x40 nm", lambda: pack_fragments([np.asarray(pts[i]) * R for i in range(0, 600, 100)]))
    c = timed("1000 merge candidates (256 points)", lambda: build_candidates(pts, ids, 1000, n_points=256, seed=0))
    m = timed(f"one arm: train classifier {args.steps} steps, batch 32", lambda: train_classifier((c.points, c.labels), steps=args.steps, seed=0))
    timed("score 1000 candidates", lambda: score(m, c.points))


if __name__ == "__main__":
    main()
