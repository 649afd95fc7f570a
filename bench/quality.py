#!/usr/bin/env python
"""Sample quality of a training recipe: train (fixed steps or minutes), sample, score honestly.

    python bench/quality.py --data DIR --out RUN --steps 1500 [--key=value ...]   # train, then score
    python bench/quality.py --data DIR --out RUN --minutes 15 [--key=value ...]   # wall-clock budget
    python bench/quality.py --data DIR --ckpt A.pt B.pt                          # score checkpoints only

Training runs ``train.py`` with the recipe's ``--key=value`` overrides (any TrainConfig key)
on ``--threads`` torch threads under ``nice``. On a shared machine compare recipes at a fixed
step count (``--steps``); the step rate is printed so minutes can be estimated.

Scoring (the realism report's :class:`mogen.evaluate.generation.Scorer`, without EMD and
memorisation): ``--n`` (default 256) unconditional samples, *raw* (not clipped), against
``--n`` random fragments of the held-out ``--split`` (default test), and in the same run
``--n`` real training fragments against the same reference (the real-train row). Per row:

- feature-MMD x1000 with its bias floor (what two samples of one distribution score at
  these sizes) and its ratio to the real-train row,
- 1-NNA-CD (128 random points per cloud),
- the fraction of points outside the crop ball (real: 0),
- NN ratios: mean distance to the 1st / 8th / 32nd / 128th neighbour, generated / reference
  (beads: < 1 at small k and > 1 past the bead size),
- branch points, leaves and cable (mean per fragment) next to the reference means.

``--clipped`` adds a row with the same samples clipped onto the ball (for comparison with
older numbers only). ``--record`` appends the table to BENCHMARKS.md.
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

from mogen.data import read_split  # noqa: E402
from mogen.data.conditions import COND_GROUP_NAMES, group_index  # noqa: E402
from mogen.evaluate.baselines import make_baselines  # noqa: E402
from mogen.evaluate.generation import Scorer, Settings, draw_reference  # noqa: E402
from mogen.metrics.pointcloud import SPACING_KS  # noqa: E402
from mogen.sampling import draw_conditions, load_generator, sample_clouds  # noqa: E402
from mogen.training import ensure_data  # noqa: E402
from common import record  # noqa: E402  (bench/)

MORPH_SHOWN = ("branch_points", "leaves", "cable_um")


def make_scorer(data_dir: Path, split: str, n: int, seed: int, cache: Path | None):
    """A Scorer for ``n`` reference fragments of ``split`` and its real-train row (cached on disk)."""
    ref_split, train_split = read_split(data_dir, split), read_split(data_dir, "train")
    settings = Settings(n=min(n, len(ref_split)), seed=seed, radius_um=ref_split.radius_um, morph_n=n)
    key = f"{ref_split.manifest.get('created', '')}-{split}-{settings.n}-{seed}".replace(":", "")
    path = cache / f"quality-scorer-{key}.pt" if cache else None
    reference = draw_reference(ref_split.points, settings.n, seed)
    idx = np.sort(np.random.default_rng(seed + 1).permutation(len(train_split))[: settings.train_n])
    train = np.asarray(train_split.points[idx], dtype=np.float32)
    state = torch.load(path, weights_only=False) if path and path.is_file() else None
    scorer = Scorer(reference, train, settings, log=print, metrics=("cd", "morph"),
                    state=state["scorer"] if state else None, progress=False)
    if state:
        real = state["real"]
    else:
        real = scorer.score("real", make_baselines(reference, train, settings.n, seed=seed)["real_train"],
                            check_memorization=False)
        real = {k: v for k, v in real.items() if not k.startswith("_")}
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"scorer": scorer.state(), "real": real}, path)
    return scorer, real, ref_split.neurons


def summary(row: dict, real: dict) -> dict:
    """The headline figures of a scored row."""
    m = row["morphometrics"]
    out = {
        "n": row["n"], "m": row["m"], "feature_mmd": row["feature_mmd"], "mmd_floor": row["mmd_floor"],
        "mmd_vs_real": row["feature_mmd"] / real["feature_mmd"], "nna_cd": row["cd"]["1-NNA"],
        "outside_ball": row["outside_ball"], "outside_1.2": row["outside_1.2"], "nn_ratio": row["nn_ratio"],
        "nn_ratios": [row[f"nn_ratio_k{k}"] for k in SPACING_KS],
    }
    for k in MORPH_SHOWN:
        out[k] = m[k]["mean_generated"]
        out[f"{k}_ref"] = m[k]["mean_reference"]
    return out


def evaluate(ckpt, scorer, real, args, weights: str = "ema") -> dict:
    model, state = load_generator(ckpt, weights=weights)
    cfg = state["config"]
    points = state["data"]["points_per_fragment"]
    source = cfg.get("source", "gaussian")
    drawn = draw_conditions(state["cond_bank"], args.n, args.seed + 1)  # training conditions, randomly rotated
    source_cond = drawn if source == "moments" else None
    cond = mask = None
    if args.cond_groups:  # ancestral sampling: conditions drawn from the training fragments
        cond, mask = drawn, torch.zeros(args.n, len(COND_GROUP_NAMES), dtype=torch.bool)
        for name in args.cond_groups.split(","):
            mask[:, group_index(name)] = True
    t0 = time.perf_counter()
    gen = sample_clouds(model, args.n, points, args.calls, args.solver, args.grid, cfg["noise_std"], cond=cond,
                        cond_mask=mask, guidance=args.guidance, seed=args.seed + 1, batch_size=16, source=source,
                        source_cond=source_cond)
    seconds = time.perf_counter() - t0
    steps = max(1, state["step"])
    sampling = f", cond {args.cond_groups} (train), guidance {args.guidance:g}" if args.cond_groups else ""
    res = {"checkpoint": str(ckpt), "weights": weights, "sampling": sampling, "step": state["step"], "train_minutes": state.get("train_seconds", 0) / 60,
           "seconds_per_step": state.get("train_seconds", 0) / steps, "sample_seconds": seconds,
           "recipe": {k: v for k, v in cfg.items() if k in args.recipe_keys}, "rows": {}}
    sets = {"raw": gen.numpy()}
    if args.clipped:
        sets["clipped"] = (gen / gen.norm(dim=-1, keepdim=True).clamp(min=1.0)).numpy()
    for tag, clouds in sets.items():
        row = scorer.score(tag, clouds, check_memorization=False)
        res["rows"][tag] = summary(row, real)
    if args.save_samples:
        np.save(Path(ckpt).with_suffix(".samples.npy"), gen.numpy()[:64])
    return res


def fmt_row(name: str, s: dict) -> str:
    morph = " | ".join(f"{s[k]:.2f} / {s[f'{k}_ref']:.2f}" for k in MORPH_SHOWN)
    return (f"| {name} | {s['feature_mmd']:.2f} [{s['mmd_floor']:.2f}] | {s['mmd_vs_real']:.1f}x | "
            f"{100 * s['nna_cd']:.1f}% | {100 * s['outside_ball']:.2f}% | {' / '.join(f'{r:.2f}' for r in s['nn_ratios'])} | {morph} |")


def markdown(results, real, args, cmd, neurons) -> str:
    lines = [
        f"### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: `{cmd}`",
        "",
        f"Machine: {platform.machine()} CPU, {os.cpu_count()} cores, torch threads {args.threads}, {args.conditions}. "
        f"n = {real['n']} raw samples ({args.solver}, {args.calls} calls, {args.grid} grid) vs {real['m']} fragments of "
        f"{args.split} neuron(s) {', '.join(neurons)}; [floor] = the feature-MMD two samples of one distribution score "
        "at these sizes. Morphometrics: generated / reference mean per fragment.",
        "",
        "| checkpoint | feature-MMD [floor] | vs real | 1-NNA-CD | outside ball | NN ratio k1 / k8 / k32 / k128 | "
        + " | ".join(MORPH_SHOWN) + " |",
        "|---" * 9 + "|",
        fmt_row("real train fragments", real),
    ]
    for res in results:
        recipe = ", ".join(f"{k}={v}" for k, v in res["recipe"].items())
        tag = f"step {res['step']}{' raw weights' if res['weights'] == 'model' else ''}{res['sampling']} ({res['train_minutes']:.1f} min, {1000 * res['seconds_per_step']:.0f} ms/step; {recipe})"
        for name, s in res["rows"].items():
            lines.append(fmt_row(f"{tag}{'' if name == 'raw' else ', ' + name}", s))
    return "\n".join(lines) + "\n"


def train(args, overrides, data_dir: Path, out: Path) -> Path:
    if (out / "ckpt.pt").exists():
        raise SystemExit(f"{out / 'ckpt.pt'} exists: pass another --out (or --ckpt to score it)")
    budget = [f"--max_steps={args.steps}", "--max_minutes=0"] if args.steps else [f"--max_minutes={args.minutes}"]
    cmd = ["nice", "-n", str(args.nice), sys.executable, str(ROOT / "train.py"), f"--data_dir={data_dir}",
           f"--out_dir={out}", *budget, f"--threads={args.threads}", "--wandb=off", f"--seed={args.seed}",
           "--progress=false", "--preview_every=0", *overrides]
    print(" ".join(cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    if subprocess.run(cmd, env=env).returncode:
        raise SystemExit("training failed")
    return out / "ckpt.pt"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="runs/data", help="prepared dataset (default data prepared there if missing)")
    p.add_argument("--out", default="runs/quality", help="run directory")
    p.add_argument("--steps", type=int, default=0, help="train this many steps (the schedule decays over them)")
    p.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget when --steps is 0")
    p.add_argument("--ckpt", nargs="*", help="only score these checkpoints")
    p.add_argument("--n", type=int, default=256, help="generated, reference and real-train fragments")
    p.add_argument("--split", default="test", help="held-out split to score against (val: checkpoint selection)")
    p.add_argument("--calls", type=int, default=20, help="network calls per sample")
    p.add_argument("--solver", default="midpoint")
    p.add_argument("--grid", default="uniform")
    p.add_argument("--cond-groups", default="", help="give these condition groups, drawn with the noise moments "
                   "from the checkpoint's training conditions (e.g. type,leaves); default: unconditional")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale with --cond-groups")
    p.add_argument("--weights", default="ema", help="comma-separated: ema, model (raw weights)")
    p.add_argument("--clipped", action="store_true", help="also score the samples clipped onto the ball")
    p.add_argument("--save-samples", action="store_true", help="keep 64 raw samples next to each checkpoint")
    p.add_argument("--threads", type=int, default=1, help="torch threads (training and scoring)")
    p.add_argument("--nice", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=Path("/tmp/mogen-quality-cache"), help="reference-side work kept here")
    p.add_argument("--conditions", default="machine shared with other jobs", help="free text for the record")
    p.add_argument("--record", action="store_true", help="append the results to BENCHMARKS.md")
    args, overrides = p.parse_known_args(argv)
    bad = [o for o in overrides if not o.startswith("--") or "=" not in o]
    if bad:
        p.error(f"unrecognised arguments {bad} (training overrides look like --key=value)")
    args.recipe_keys = {o[2:].split("=", 1)[0] for o in overrides} | {"source", "time_sampler", "model"}
    cmd = "python bench/quality.py " + " ".join(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(args.threads)
    data_dir = ensure_data(args.data)
    out = Path(args.out)
    ckpts = args.ckpt or [train(args, overrides, data_dir, out)]
    scorer, real, neurons = make_scorer(data_dir, args.split, args.n, args.seed, args.cache)
    real = summary(real, real)
    results = []
    for ckpt in ckpts:
        for weights in args.weights.split(","):
            print(f"scoring {ckpt} ({weights} weights)", flush=True)
            results.append(evaluate(ckpt, scorer, real, args, weights))
            print(fmt_row(f"{ckpt} ({weights})", results[-1]["rows"]["raw"]), flush=True)
    dest = out if not args.ckpt else Path(args.ckpt[0]).parent
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "quality.json").write_text(json.dumps({"real": real, "results": results}, indent=1))
    text = markdown(results, real, args, cmd, neurons)
    print(text)
    if args.record:
        record(text, section="## Sample quality")
    return 0


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
