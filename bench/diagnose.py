#!/usr/bin/env python
"""Where does the beading arise? Restart the ODE from the TRUE interpolant and score the endpoints.

    python bench/diagnose.py --ckpt RUN/ckpt.pt --data DATA [--n 16] [--split test]
    python bench/diagnose.py --pretrained open-skeletons --data DATA

For ``--n`` fragments x1 of ``--split``: noise x0 from the model's own source (the fragment's
moments, paired to x1 as in training when the checkpoint trained with pairing), the interpolant
x_t = (1 - t) x0 + t x1 at t0 in {0, 0.25, 0.5, 0.75, 0.9}, then the model's midpoint solve from
t0 to 1 (10 steps per unit time, last step Euler). Per t0 the table gives the mean distance to
the 1st / 8th / 32nd nearest neighbour of the endpoints and of the one-step estimate
x1_hat = x_t + (1 - t0) v, each divided by that of the real x1 (1 = real spacing; < 1 at k = 1, 8
with > 1 at k = 32 is beading). If endpoints from t0 = 0 bead but those from t0 = 0.5 do not,
the early field makes the beads. kNN ratios alone can be fooled by fuzzy clusters: look at the
samples too (sample.py writes samples.png).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mogen.data.conditions import cloud_moments  # noqa: E402
from mogen.flow import interpolate, pair_noise, source_noise  # noqa: E402
from mogen.sampling import load_generator  # noqa: E402
from mogen.solvers import guided_velocity  # noqa: E402
from common import run  # noqa: E402  (bench/)

KS = (1, 8, 32)
RESTARTS = (0.0, 0.25, 0.5, 0.75, 0.9)


def knn_distances(clouds: np.ndarray) -> np.ndarray:
    """Mean distance to the k-th neighbour, k in KS, averaged over clouds: [len(KS)]."""
    return np.array([[cKDTree(c).query(c, k=max(KS) + 1)[0][:, k].mean() for k in KS] for c in clouds]).mean(0)


@torch.no_grad()
def restart(model, x0, x1, t0: float, steps_per_unit: int = 10):
    """Endpoint of the model's solve from the true interpolant at t0, and its one-step estimate at t0."""
    n = len(x1)
    cond = torch.zeros(n, model.config.cond_dim)
    mask = torch.zeros(n, model.config.cond_groups, dtype=torch.bool)
    v = guided_velocity(model, cond, mask)
    at = lambda t: torch.full((n,), float(t))  # noqa: E731
    x, _ = interpolate(x0, x1, at(t0))
    x1_hat = x + (1 - t0) * v(x, at(t0))
    steps = max(1, round(steps_per_unit * (1 - t0)))
    ts = np.linspace(t0, 1, steps + 1)
    for i, (t, t_next) in enumerate(zip(ts[:-1], ts[1:])):
        h = t_next - t
        x = x + h * (v(x, at(t)) if i == steps - 1 else v(x + 0.5 * h * v(x, at(t)), at(t + 0.5 * h)))
    return x, x1_hat


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint (or run directory)")
    src.add_argument("--pretrained", help="a bundled generator (python -m mogen.pretrained lists them)")
    p.add_argument("--data", required=True, help="prepared dataset (mogen prepare)")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=16, help="fragments (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.pretrained:
        from mogen.pretrained import checkpoint_path
        a.ckpt = checkpoint_path(a.pretrained)
    model, state = load_generator(a.ckpt)
    from mogen.data import read_split
    points = read_split(a.data, a.split).points
    rng = np.random.default_rng(a.seed)
    x1 = torch.from_numpy(np.asarray(points[np.sort(rng.choice(len(points), min(a.n, len(points)), replace=False))]))
    centroid, cov = cloud_moments(x1)
    cfg = state.get("config", {})
    x0 = source_noise(x1.shape, cfg.get("source", "moments"), cfg.get("noise_std", 1.0), centroid, cov,
                      torch.Generator().manual_seed(a.seed))
    if cfg.get("pair", True):
        x0 = pair_noise(x1, x0)
    real = knn_distances(x1.numpy())
    print(f"{a.ckpt}: n = {len(x1)} fragments of {a.split}; real kNN distances k = {KS}: {np.round(real, 4).tolist()}")
    print("| restart t0 | endpoint k1 / k8 / k32 ratio | one-step x1_hat k1 / k8 / k32 ratio |")
    print("|---|---|---|")
    for t0 in RESTARTS:
        end, x1_hat = restart(model, x0, x1, t0)
        fmt = lambda d: " / ".join(f"{r:.2f}" for r in knn_distances(d.numpy()) / real)  # noqa: E731
        print(f"| {t0:.2f} | {fmt(end)} | {fmt(x1_hat)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
