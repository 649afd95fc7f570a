#!/usr/bin/env python
"""Speed and sanity of the evaluation metrics on the default data.

    python bench/eval.py --data /tmp/data/navis            # all parts
    python bench/eval.py --data DIR --n 1000 --threads 2 --parts speed
    python bench/eval.py --data DIR --ckpt RUN/ckpt.pt --parts ratio   # report vs sampling, one run

Parts:

- ``ratio``: the issue's other target, in one run: sample ``--report-n`` (256) clouds from
  ``--ckpt`` at 20 network calls (``sample.py``), then the full realism report of those clouds
  with ``--baselines`` (``python -m mogen.evaluate.generation``), once per ``--workers`` value;
  prints report seconds / sampling seconds (goal <= 1); the last ``--workers`` value also runs
  with ``--cache``, then again from that cache (the cost of each later checkpoint's report).
- ``speed``: the issue's target, feature-MMD + 1-NNA-CD for n vs n clouds of the dataset's
  point count (defaults 1,000 vs 1,000, Chamfer on ``--cd-points`` points), split into
  feature extraction, Chamfer matrices and the rest; plus EMD and morphometrics per cloud.
- ``sanity``: feature-MMD of real training vs held-out fragments and of Gaussian noise,
  n = 64 per set, repeated ``--repeats`` times (MoGen's numbers: ~4.5 +- 2 and ~1,868).
- ``fidelity``: 1-NNA-CD / COV-CD of real train vs held-out fragments with Chamfer on 128
  points vs more points, same clouds, to show what the subsample changes.

Needs a dataset directory with non-empty ``train`` and ``test`` splits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mogen.metrics.features import cloud_features  # noqa: E402
from mogen.evaluate.generation import features_parallel  # noqa: E402
from mogen.metrics.mmd import feature_scale, mmd_rbf  # noqa: E402
from mogen.data import read_manifest, read_split  # noqa: E402
from mogen.errors import MogenError  # noqa: E402
from common import check_at_least  # noqa: E402  (bench/)
from mogen.metrics.morphometrics import morphometrics  # noqa: E402
from mogen.metrics.parallel import default_workers  # noqa: E402
from mogen.metrics.pointcloud import chamfer_matrix, emd, pointflow_metrics, subsample  # noqa: E402


def load(root: Path, split: str) -> np.ndarray:
    return read_split(root, split).points


def speed(args, train, test):
    n = args.n
    pool = np.concatenate([np.asarray(train), np.asarray(test)] + [np.asarray(load(args.data, "val"))] * (n * 2 > len(train) + len(test)))
    if len(pool) < 2 * n:
        raise SystemExit(f"need {2 * n} fragments for n={n}, the dataset has {len(pool)}")
    idx = np.random.default_rng(0).permutation(len(pool))
    gen, ref = pool[idx[:n]], pool[idx[n : 2 * n]]
    t0 = time.perf_counter()
    w = args.workers[-1]
    fg, fr = features_parallel(gen, w, progress=True), features_parallel(ref, w, progress=True)
    t1 = time.perf_counter()
    scale = feature_scale(fr)
    score = 1000 * mmd_rbf(fg / scale, fr / scale)
    t2 = time.perf_counter()
    g, r = subsample(gen, args.cd_points), subsample(ref, args.cd_points, seed=1)
    d_gg, d_rr, d_gr = chamfer_matrix(g, progress=True), chamfer_matrix(r, progress=True), chamfer_matrix(g, r, progress=True)
    t3 = time.perf_counter()
    m = pointflow_metrics(d_gr, d_gg, d_rr)
    t4 = time.perf_counter()
    print(f"\n## speed: {n} vs {n} clouds x {pool.shape[1]} points, {torch.get_num_threads()} torch threads, "
          f"features in {w} process(es); load average {os.getloadavg()[0]:.1f}")
    print("| step | seconds |\n|---|---|")
    print(f"| shape features, {2 * n} clouds ({1e3 * (t1 - t0) / (2 * n):.1f} ms/cloud) | {t1 - t0:.1f} |")
    print(f"| feature-MMD from features | {t2 - t1:.2f} |")
    pairs = (2 * n) ** 2 // 2
    print(f"| Chamfer matrices at {args.cd_points} points ({pairs:,} pairs, {1e6 * (t3 - t2) / pairs:.1f} µs/pair) | {t3 - t2:.1f} |")
    print(f"| 1-NNA / COV / MMD from the matrices | {t4 - t3:.2f} |")
    print(f"| **total feature-MMD + 1-NNA-CD** | **{t4 - t0:.1f}** |")
    print(f"(values, random real fragments vs random real fragments: feature-MMD {score:.2f}, 1-NNA-CD {100 * m['1-NNA']:.1f}%)")
    rng = np.random.default_rng(1)
    for p in (128, 256):
        x, y = (np.asarray(pool[i][rng.permutation(pool.shape[1])[:p]], dtype=np.float64) for i in (0, 1))
        t = time.perf_counter()
        for _ in range(20):
            emd(x, y)
        print(f"EMD (exact assignment) {p} points: {1e3 * (time.perf_counter() - t) / 20:.1f} ms/pair")
    t = time.perf_counter()
    morphometrics(pool[:100], radius_um=args.radius)
    print(f"morphometrics: {1e3 * (time.perf_counter() - t) / 100:.1f} ms/cloud")


def ratio(args, train, test):
    """Sampling 256 clouds at 20 calls vs the full report on them (all metrics, baselines), one run."""
    from mogen import sampling
    from mogen.cli import run_command
    from mogen.evaluate import generation

    out = args.scratch
    t0 = time.perf_counter()
    code = run_command("sample.py", sampling, ["--ckpt", str(args.ckpt), "--n", str(args.report_n), "--steps", "20",
                                                "--out", str(out / "samples"), "--no-ply", "--force"])
    if code:  # sample.py said why on stderr; timing a failed step would print a meaningless ratio
        raise SystemExit(code)
    t_sample = time.perf_counter() - t0
    load_sample = os.getloadavg()[0]
    rows = []
    cache = out / "report-cache"
    for stale in cache.glob("eval-generation-*.pt"):  # only this bench's own cache files: a cold start
        stale.unlink()
    # Cold: everything from scratch (the last --workers value also fills a --cache). Cached:
    # the next checkpoint's report against the same data, which is how reports are used
    # during development: only the generated row is scored.
    runs = [(w, "cold", []) for w in args.workers[:-1]]
    runs += [(args.workers[-1], "cold", ["--cache", str(cache)]), (args.workers[-1], "cached", ["--cache", str(cache)])]
    for w, kind, extra in runs:
        t0 = time.perf_counter()
        code = run_command("python -m mogen.evaluate.generation", generation, [
            "--samples", str(out / "samples" / "samples.npz"), "--reference", str(args.data), "--baselines",
            "--n", str(args.report_n), "--workers", str(w), "--out", str(out / f"report-w{w}-{kind}"), "--force",
            *extra])
        if code:
            raise SystemExit(code)
        rows.append((f"{w} worker(s), {kind}", time.perf_counter() - t0, os.getloadavg()[0]))
    print(f"\n## ratio: {args.report_n} clouds, sampled at 20 calls vs the full report (--baselines), "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs")
    print("| step | seconds | load average after |\n|---|---|---|")
    print(f"| sample {args.report_n} clouds, 20 calls | {t_sample:.1f} | {load_sample:.1f} |")
    for what, t, load in rows:
        print(f"| report, {what} | {t:.1f} | {load:.1f} |")
    for what, t, _ in rows:
        print(f"ratio report / sampling, {what}: {t / t_sample:.2f} (goal <= 1)")


def sanity(args, train, test):
    ftr = cloud_features(np.asarray(train), progress=True)
    fte = cloud_features(np.asarray(test), progress=True)
    rng = np.random.default_rng(0)
    s_tr = feature_scale(ftr)
    rows = {"real train vs held-out": [], "N(0,1) noise (unit ball) vs held-out": [], "N(0,0.1²) noise vs held-out": []}
    rows_ref = {k: [] for k in rows}
    k = 64
    for _ in range(args.repeats):
        b = fte[rng.choice(len(fte), k, replace=False)]
        s_ref = feature_scale(b)
        sets = {
            "real train vs held-out": ftr[rng.choice(len(ftr), k, replace=False)],
            "N(0,1) noise (unit ball) vs held-out": cloud_features(rng.normal(size=(k, test.shape[1], 3))),
            "N(0,0.1²) noise vs held-out": cloud_features(rng.normal(size=(k, test.shape[1], 3)) * 0.1),
        }
        for name, a in sets.items():
            rows[name].append(1000 * mmd_rbf(a / s_tr, b / s_tr))
            rows_ref[name].append(1000 * mmd_rbf(a / s_ref, b / s_ref))
    print(f"\n## sanity: feature-MMD x1000, n = {k} per set, {args.repeats} draws (mean ± std)")
    print("| pair | scaled by train std | scaled by reference std |\n|---|---|---|")
    for name in rows:
        print(f"| {name} | {np.mean(rows[name]):.2f} ± {np.std(rows[name]):.2f} | {np.mean(rows_ref[name]):.2f} ± {np.std(rows_ref[name]):.2f} |")


def fidelity(args, train, test):
    k = args.fidelity_n
    rng = np.random.default_rng(2)
    a = np.asarray(train[np.sort(rng.choice(len(train), k, replace=False))])
    b = np.asarray(test[np.sort(rng.choice(len(test), k, replace=False))])
    print(f"\n## fidelity: real train vs held-out, {k} vs {k} clouds, Chamfer on a random subsample")
    print("| CD points | 1-NNA-CD | COV-CD | seconds |\n|---|---|---|---|")
    for p in args.fidelity_points:
        t = time.perf_counter()
        g, r = subsample(a, p), subsample(b, p, seed=1)
        m = pointflow_metrics(chamfer_matrix(g, r), chamfer_matrix(g), chamfer_matrix(r))
        print(f"| {p} | {100 * m['1-NNA']:.1f}% | {100 * m['COV']:.1f}% | {time.perf_counter() - t:.1f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("/tmp/data/navis"), help="dataset directory")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--cd-points", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--fidelity-n", type=int, default=100)
    p.add_argument("--fidelity-points", type=int, nargs="+", default=[128, 512])
    p.add_argument("--parts", nargs="+", default=["speed", "sanity", "fidelity"],
                   choices=["speed", "sanity", "fidelity", "ratio"])
    p.add_argument("--ckpt", type=Path, default=None, help="checkpoint to sample for --parts ratio")
    p.add_argument("--report-n", type=int, default=256, help="clouds sampled and scored for --parts ratio")
    p.add_argument("--workers", type=int, nargs="+", default=[default_workers()],
                   help="worker processes of the report (ratio: one report per value) and of the features (speed: the last)")
    p.add_argument("--scratch", type=Path, default=Path("/tmp/mogen-bench-eval"), help="where ratio writes samples and reports")
    args = p.parse_args()
    # Bad arguments and a bad dataset end in one line before any work, as in the mogen commands.
    check_at_least(p, args, {name: 1 for name in ("n", "cd_points", "threads", "repeats", "fidelity_n", "report_n")})
    if min(args.workers) < 1:
        p.error(f"--workers must be at least 1, got {min(args.workers)}")
    if "ratio" in args.parts and (args.ckpt is None or not args.ckpt.exists()):
        p.error(f"--parts ratio needs --ckpt, a checkpoint written by train.py (got {args.ckpt})")
    torch.set_num_threads(args.threads)
    try:
        manifest = read_manifest(args.data)
    except MogenError as e:
        raise SystemExit(f"bench/eval.py: error: {e}") from None
    args.radius = float(manifest["radius_um"])
    train, test = load(args.data, "train"), load(args.data, "test")
    print(f"# bench/eval.py on {args.data} (train {len(train)}, test {len(test)} fragments); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for part in args.parts:
        {"speed": speed, "sanity": sanity, "fidelity": fidelity, "ratio": ratio}[part](args, train, test)


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
