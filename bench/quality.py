#!/usr/bin/env python
"""Sample quality after a fixed wall-clock training budget (feature-MMD vs a held-out neuron).

    python bench/quality.py                       # 15 min of tiny training on runs/data, then evaluate
    python bench/quality.py --minutes 15 --extend 20 --record
    python bench/quality.py --ckpt runs/q/ckpt.pt # evaluate an existing checkpoint only

Protocol (the project's headline target): train the ``tiny`` config for ``--minutes`` of
wall-clock time (everything included: data loading, kNN, checkpoints) on the default
data (navis neurons, 4 train / 1 test), then sample ``--n`` unconditional fragments at 20
and at 200 network calls and compute MoGen's feature-MMD (x1000, biased, sigma 10)
against ``--n`` random fragments of the *test* neuron. Features are scaled by the std of
the training fragments (MoGen's convention); the score with the test set's own std is
given too. Reference rows, same n: real training fragments vs the test neuron, and the
Gaussian noise the sampler starts from.

With ``--extend M`` training continues to M minutes after a snapshot at ``--minutes``
(the learning rate reaches its floor at ``--minutes`` and stays there); the snapshot is
evaluated while training continues, then the final checkpoint at the first call budget. ``--record`` appends the table to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mogen.metrics.features import cloud_features  # noqa: E402
from mogen.metrics.mmd import feature_scale, mmd_rbf  # noqa: E402
from mogen.data import read_split  # noqa: E402
from mogen.data.conditions import moments  # noqa: E402
from mogen.flow import source_noise  # noqa: E402
from mogen.sampling import draw_conditions, load_generator, sample_clouds  # noqa: E402
from mogen.solvers import CALLS_PER_STEP  # noqa: E402
from mogen.training import ensure_data  # noqa: E402
from common import record  # noqa: E402  (bench/)

def mmd_both(gen_feats, ref_feats, train_scale):
    """(MMD with training-set scaling, MMD with reference-set scaling)."""
    ref_scale = feature_scale(ref_feats)
    return (
        1000 * mmd_rbf(gen_feats / train_scale, ref_feats / train_scale),
        1000 * mmd_rbf(gen_feats / ref_scale, ref_feats / ref_scale),
    )


def evaluate(ckpt, data_dir, n, seed, settings, threads):
    torch.set_num_threads(threads)
    model, state = load_generator(ckpt)
    points = state["data"]["points_per_fragment"]
    noise_std = state["config"]["noise_std"]
    rng = np.random.default_rng(seed)
    test_split = read_split(data_dir, "test")
    test, train_pts = test_split.points, read_split(data_dir, "train").points
    test_idx = np.sort(rng.choice(len(test), min(n, len(test)), replace=False))
    ref = cloud_features(np.asarray(test[test_idx]))
    scale_idx = np.sort(rng.choice(len(train_pts), min(512, len(train_pts)), replace=False))
    train_scale = feature_scale(cloud_features(np.asarray(train_pts[scale_idx])))
    rows = []
    real_idx = np.sort(rng.choice(len(train_pts), n, replace=False))
    real = mmd_both(cloud_features(np.asarray(train_pts[real_idx])), ref, train_scale)
    rows.append({"setting": f"real: {n} train fragments vs test", "mmd": real[0], "mmd_ref_scale": real[1]})
    source = state["config"].get("source", "gaussian")
    source_cond = draw_conditions(state["cond_bank"], n, seed + 1) if source == "moments" else None
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, points, 3, generator=g)
    nz = mmd_both(cloud_features(noise.numpy()), ref, train_scale)
    rows.append({"setting": "noise N(0, 1)", "mmd": nz[0], "mmd_ref_scale": nz[1]})
    if source == "moments":
        start = source_noise((n, points, 3), source, noise_std, *moments(source_cond), g)
        nz = mmd_both(cloud_features(start.numpy()), ref, train_scale)
        rows.append({"setting": f"sampler's start (t=0): N(train centroid, {noise_std:g}^2 train cov)",
                     "mmd": nz[0], "mmd_ref_scale": nz[1]})
    for label, solver, calls, grid, knn_every in settings:
        steps = calls  # sample_clouds takes network calls
        t0 = time.perf_counter()
        gen = sample_clouds(model, n, points, steps, solver, grid, noise_std, seed=seed + 1, batch_size=16,
                            source=source, source_cond=source_cond, knn_every=knn_every)
        seconds = time.perf_counter() - t0
        # Same samples twice: as integrated, and with stray points moved onto the crop sphere.
        clipped = gen / gen.norm(dim=-1, keepdim=True).clamp(min=1.0)
        for tag, pts in (("", gen), (", clipped to the unit ball", clipped)):
            m = mmd_both(cloud_features(pts.numpy()), ref, train_scale)
            rows.append({
                "setting": f"{label} ({solver} x{calls // CALLS_PER_STEP[solver]}, {grid} grid"
                           f"{f', kNN every {knn_every} calls' if knn_every > 1 else ''}{tag})",
                "mmd": m[0], "mmd_ref_scale": m[1], "sample_seconds": round(seconds, 1),
            })
            print(f"  {rows[-1]['setting']}: MMD {m[0]:.1f} (ref-scaled {m[1]:.1f}), {seconds:.0f} s", flush=True)
    return {"checkpoint": str(ckpt), "step": state["step"], "train_minutes": state.get("train_seconds", 0) / 60,
            "n_generated": n, "n_reference": len(test_idx), "test_neurons": test_split.neurons,
            "rows": rows}


def markdown(results, args, cmd):
    lines = [
        f"### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: `{cmd}`",
        "",
        f"Machine: {platform.machine()} CPU, {os.cpu_count()} cores, torch threads {args.threads}, "
        f"{args.conditions}. n = {args.n} generated vs {results[0]['n_reference']} fragments of test neuron(s) "
        f"{', '.join(results[0]['test_neurons'])}; features scaled by the std of 512 training fragments "
        "(MoGen's convention; in brackets: scaled by the test set's std).",
        "",
        "| checkpoint | setting | feature-MMD (x1000) | sampling time |",
        "|---|---|---|---|",
    ]
    for res in results:
        tag = f"{res['train_minutes']:.1f} min, step {res['step']}"
        for r in res["rows"]:
            t = f"{r['sample_seconds']} s" if "sample_seconds" in r else ""
            lines.append(f"| {tag} | {r['setting']} | {r['mmd']:.1f} ({r['mmd_ref_scale']:.1f}) | {t} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="runs/data", help="prepared dataset (default data prepared there if missing)")
    p.add_argument("--out", default="runs/quality", help="run directory")
    p.add_argument("--minutes", type=float, default=15.0, help="training budget (wall clock)")
    p.add_argument("--extend", type=float, default=0.0, help="keep training to this many minutes (0: no)")
    p.add_argument("--n", type=int, default=64, help="generated and reference fragments")
    p.add_argument("--threads", type=int, default=2, help="torch threads for training (and final evaluation)")
    p.add_argument("--eval-threads", type=int, default=1, help="threads of the evaluation that overlaps training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt", nargs="*", help="only evaluate these checkpoints")
    p.add_argument("--calls", default="20,200", help="network-call budgets to evaluate (first checkpoint)")
    p.add_argument("--solver", default="midpoint", help="fixed-step solver")
    p.add_argument("--grid", default="uniform", help="time grid: uniform | cosine | late")
    p.add_argument("--knn-every", default="1", help="comma-separated: reuse neighbour indices for this many calls")
    p.add_argument("--conditions", default="machine shared with other jobs", help="free text for the record")
    p.add_argument("--record", action="store_true", help="append the results to BENCHMARKS.md")
    args, overrides = p.parse_known_args(argv)
    cmd = "python bench/quality.py " + " ".join(argv if argv is not None else sys.argv[1:])
    data_dir = ensure_data(args.data)
    out = Path(args.out)
    calls = [int(c) for c in args.calls.split(",")]
    settings = [(f"{c} calls", args.solver, c, args.grid, int(m)) for c in calls for m in args.knn_every.split(",")]
    results = []
    if args.ckpt:
        for i, ckpt in enumerate(args.ckpt):
            print(f"evaluating {ckpt}", flush=True)
            results.append(evaluate(ckpt, data_dir, args.n, args.seed, settings, args.threads))
    else:
        if (out / "ckpt.pt").exists():
            raise SystemExit(f"{out / 'ckpt.pt'} exists: pass another --out (or --ckpt to evaluate it)")
        total = max(args.minutes, args.extend)
        train_cmd = [
            sys.executable, str(ROOT / "train.py"), f"--data_dir={data_dir}", f"--out_dir={out}",
            f"--max_minutes={total}", f"--schedule_minutes={args.minutes}", f"--snapshot_minutes={args.minutes:g}",
            f"--threads={args.threads}", "--wandb=off", f"--seed={args.seed}", "--progress=false", *overrides,
        ]
        print(" ".join(train_cmd), flush=True)
        proc = subprocess.Popen(train_cmd)
        if args.extend > args.minutes:
            # Evaluate the snapshot while training goes on to --extend minutes (the extra
            # minutes then share the CPU with this evaluation; the snapshot's do not).
            snap = out / f"ckpt_{args.minutes:g}min.pt"
            while not snap.exists() and proc.poll() is None:
                time.sleep(5)
            if not snap.exists():
                raise SystemExit(f"training stopped (exit code {proc.returncode}) before the {args.minutes:g}-minute snapshot")
            print(f"evaluating {snap}", flush=True)
            results.append(evaluate(snap, data_dir, args.n, args.seed, settings, args.eval_threads))
        if proc.wait():
            raise SystemExit(f"training failed (exit code {proc.returncode})")
        print(f"evaluating {out / 'ckpt.pt'}", flush=True)
        results.append(evaluate(out / "ckpt.pt", data_dir, args.n, args.seed,
                                settings[:1] if results else settings, args.threads))
    (out if out.exists() else Path(args.ckpt[0]).parent).joinpath("quality.json").write_text(json.dumps(results, indent=1))
    text = markdown(results, args, cmd)
    print(text)
    if args.record:
        record(text, section="## Sample quality")
    return 0


if __name__ == "__main__":
    sys.exit(main())
