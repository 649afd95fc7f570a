"""Data pipeline throughput: fragments per second, and the loader's batches per second.

Measures, for a navis example neuron as an EM mesh and as a skeleton tube (radii from the
SWC), at 2,048 and 8,192 points per fragment:

- crop:  anchor → uniform surface sample in the ball (``Cropper.crop``)
- +MST:  crop plus the MST leaf count stored with every fragment (what ``prepare`` pays)

and the training loader (``make_loader``: memmap read, random rotation, jitter, condition
vector) in fragments per second at batch 64.

Usage::

    python bench/data.py                 # about a minute on 2 cores
    python bench/data.py --fragments 100 --threads 1
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import datetime, timezone

import numpy as np
import torch

from mogen.data.conditions import mst_leaf_count
from mogen.data.dataset import DatasetWriter, make_loader, write_manifest
from mogen.data.fragments import Cropper, Fragments, anchors_along_cable, neuron_surface
from mogen.data.neuron import navis_examples
from mogen.data.surface import skeleton_geometry


def bench_crops(neuron, n_points: int, n_frag: int, radius: float = 10.0) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    xyz, _, _, pidx = skeleton_geometry(neuron.skeleton)
    anchors, _ = anchors_along_cable(xyz, pidx, 5.0, rng)
    anchors = anchors[rng.choice(len(anchors), n_frag, replace=False)]
    cropper = Cropper(neuron_surface(neuron, radius), radius)
    t = time.perf_counter()
    crops = [cropper.crop(a, n_points, rng)[0] for a in anchors]
    t_crop = time.perf_counter() - t
    t = time.perf_counter()
    for c in crops:
        mst_leaf_count(c / radius)
    t_mst = time.perf_counter() - t
    return n_frag / t_crop, n_frag / (t_crop + t_mst)


def bench_loader(n_points: int, batch: int = 64, n_frag: int = 1024, seconds: float = 3.0) -> float:
    with tempfile.TemporaryDirectory() as d:
        w = DatasetWriter(d, n_points)
        rng = np.random.default_rng(0)
        pts = rng.standard_normal((n_frag, n_points, 3)).astype(np.float32) * 0.3
        w.add("x", Fragments(pts, np.zeros((n_frag, 3), np.float32), np.full(n_frag, 3, np.int8),
                             np.full(n_frag, 500, np.int32), 1.0, n_frag, 0))
        counts = w.finish({"train": ["x"], "val": [], "test": []})
        write_manifest(d, {"radius_um": 10.0, "points_per_fragment": n_points, "units": "um", "seed": 0,
                           "splits": {s: {"neurons": [], "fragments": c} for s, c in counts.items()},
                           "neurons": [], "failed": []})
        loader = make_loader(d, "train", batch, rotate=True, jitter=0.005)
        done, t = 0, time.perf_counter()
        while time.perf_counter() - t < seconds:
            for b in loader:
                done += len(b["points"])
                if time.perf_counter() - t >= seconds:
                    break
        return done / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fragments", type=int, default=40, help="fragments timed per setting")
    p.add_argument("--threads", type=int, default=1, help="torch/BLAS threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    neuron = navis_examples()[0]
    skeleton = type(neuron)(**{**neuron.__dict__, "mesh": None, "kind": "skeleton"})
    print(f"# bench/data.py  {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC  {platform.machine()}  "
          f"threads={args.threads}  fragments/setting={args.fragments}  neuron={neuron.id}")
    print("| source | points | crop frag/s | crop+MST frag/s |")
    print("|---|---|---|---|")
    for name, n in (("EM mesh", neuron), ("skeleton tube", skeleton)):
        for pts in (2048, 8192):
            a, b = bench_crops(n, pts, args.fragments)
            print(f"| {name} | {pts} | {a:.0f} | {b:.0f} |", flush=True)
    print("\n| loader (batch 64, rotate+jitter+cond) | points | frag/s |")
    print("|---|---|---|")
    for pts in (2048, 8192):
        print(f"| memmap → batch | {pts} | {bench_loader(pts):.0f} |", flush=True)


if __name__ == "__main__":
    main()
