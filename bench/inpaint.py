#!/usr/bin/env python
"""Does replacement make generated points agree with the given ones? Half-crop completion on held-out neurons.

    python bench/inpaint.py --ckpt runs/tiny --data data/navis --n 16

For ``n`` held-out (test split) fragments, the half of the crop on one side of the plane through
the anchor across the fragment's principal axis is given and the other half is generated
(:func:`mogen.grow.outpaint`, as ``mogen grow`` does for each next crop). The generated half is
compared with the true hidden half by the Chamfer distance (mean nearest-neighbour distance, both
ways, µm; only points in the hidden half-ball count, so each side is scored where it should be):

- ``replacement``: known points held on their path (what ``mogen grow`` does);
- ``independent``: the same noise pairing, but the known points move freely (no outpainting);
- ``other crop`` (floor): the hidden half of a different held-out fragment, rotated so that its
  principal axis matches;
- ``resampled`` (ceiling): the true hidden half sampled again from the neuron's surface.

Prints a Markdown table; ``--record`` appends it to BENCHMARKS.md (section Grow).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mogen.grow import _noise_moments, outpaint  # noqa: E402
from mogen.sampling import load_generator  # noqa: E402


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return 0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean())


def axis(x: np.ndarray) -> np.ndarray:
    return np.linalg.eigh(np.cov(x.T))[1][:, -1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--data", required=True, help="the dataset the generator was trained on (its test split is used)")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--resample", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--record", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    from mogen.data import read_split
    from mogen.data.fragments import Cropper, neuron_surface
    from mogen.evaluate.whole import reference_neurons

    model, state = load_generator(args.ckpt)
    cfg = state["config"]
    split = read_split(args.data, "test")
    radius, n_pts = split.radius_um, split.points.shape[1]
    neurons = {str(nr.id): nr for nr in reference_neurons(f"{args.data}:test", "test")[0]}
    croppers = {k: Cropper(neuron_surface(v, radius), radius) for k, v in neurons.items()}
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(split), args.n, replace=False)
    scores = {"replacement": [], "independent": [], "other crop (floor)": [], "resampled (ceiling)": []}
    t0 = time.perf_counter()
    for j, i in enumerate(pick):
        x = np.asarray(split.points[i], np.float64)
        u = axis(x)
        known_mask = x @ u < 0
        known, hidden = x[known_mask], x[~known_mask] * radius
        known_t = torch.from_numpy(known).float()
        centroid, cov = _noise_moments(known_t) if cfg.get("source") == "moments" else (None, None)
        for arm, replace in (("replacement", True), ("independent", False)):
            out = outpaint(model, known_t, n_pts, args.steps, centroid=centroid, cov=cov, source=cfg.get("source", "gaussian"),
                           noise_std=cfg.get("noise_std", 1.0), resample=args.resample, seed=args.seed + j, replace=replace)
            free = out[len(known):].numpy() * radius
            scores[arm].append(chamfer(free[free @ u > 0], hidden))
        other = np.asarray(split.points[rng.choice(np.delete(np.arange(len(split)), i))], np.float64)
        v = axis(other)
        rot = np.linalg.svd(np.outer(u, v))  # any rotation taking v to u
        r = rot[0] @ rot[2]
        other = other @ r.T
        other = other if (other @ u > 0).sum() else -other
        scores["other crop (floor)"].append(chamfer(other[other @ u > 0] * radius, hidden))
        again, _ = croppers[str(split.neuron_id[i])].crop(split.anchor_um[i].astype(float), n_pts, rng)
        if again is not None:
            scores["resampled (ceiling)"].append(chamfer(again[again @ u > 0], hidden))
    secs = time.perf_counter() - t0
    lines = [f"Half-crop completion on {args.n} held-out fragments (`python bench/inpaint.py --ckpt {args.ckpt} --data "
             f"{args.data} --n {args.n} --steps {args.steps} --resample {args.resample}`, {secs:.0f} s): Chamfer distance "
             "(µm) between the generated and the true hidden half, mean ± s.e.:", "", "| arm | Chamfer (µm) |", "|---|---|"]
    for arm, v in scores.items():
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        lines.append(f"| {arm} | {v.mean():.2f} ± {v.std(ddof=1) / np.sqrt(len(v)):.2f} (n={len(v)}) |")
    rep, ind = np.asarray(scores["replacement"]), np.asarray(scores["independent"])
    ok = np.isfinite(rep) & np.isfinite(ind)
    lines.append(f"\nReplacement closer than independent in {int((rep[ok] < ind[ok]).sum())} of {int(ok.sum())} fragments.")
    table = "\n".join(lines)
    print(table)
    if args.record:
        from common import record

        record(table, "## Grow")
    return 0


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
