#!/usr/bin/env python
"""Does outpainting work? Seam quality of grown neurites: replacement vs independent crops vs a real surface.

    python bench/grow.py --ckpt runs/tiny --seeds navis:0 navis:2 --length-um 150 --out runs/bench_grow

For every seed crop (cut from a real neuron) three neurites are grown with the same crop logic
(:func:`mogen.grow.grow`):

- ``real``: every crop is an exact crop of the real neuron's surface (:func:`surface_generator`):
  the seams a perfect generator would leave (the ceiling);
- ``replacement``: the generator outpaints each crop with the known points held on their path;
- ``independent``: the generator makes each crop without looking at the known points (the
  control: ``--no-replace``).

Reported per arm (mean over seeds): seam quality (:func:`mogen.grow.seam_quality`: density,
thickness and normal-angle at seams vs inside crops), the share of free points that fell into
earlier crops (spill), crops, points, seconds per crop. Writes ``OUT/grow_bench.json`` and prints a
Markdown table; ``--record`` appends it to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mogen.grow import GrowConfig, grow, seam_quality, seed_from, surface_generator  # noqa: E402
from mogen.sampling import load_generator  # noqa: E402

KEYS = ("density_ratio", "thickness_ratio", "cross_normal_angle_deg", "within_normal_angle_deg")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--seeds", nargs="+", default=["navis:0", "navis:2"],
                   help="seed crops: navis:I, SWC/mesh files, or sample (the generator's own; no real arm)")
    p.add_argument("--length-um", type=float, default=150.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--resample", type=int, default=0)
    p.add_argument("--arms", nargs="+", default=["real", "replacement", "independent"])
    p.add_argument("--out", required=True)
    p.add_argument("--record", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    model, state = load_generator(args.ckpt)
    radius, n = float(state["data"]["radius_um"]), int(state["data"]["points_per_fragment"])
    rows = {arm: [] for arm in args.arms}
    for k, spec in enumerate(args.seeds):
        pts, note, surface, anchor = seed_from(spec, radius, n, seed=k)
        note = f"{note} #{k}"
        for arm in args.arms:
            if arm == "real" and surface is None:
                continue  # a sampled seed has no real surface to follow
            cfg = GrowConfig(length_um=args.length_um, steps=args.steps, resample=args.resample,
                             replace=arm != "independent", seed=k)
            gen = surface_generator(surface, anchor, radius, n, seed=k) if arm == "real" else None
            t0 = time.perf_counter()
            g = grow(model, state, cfg, pts, progress=False, generate=gen)
            secs = time.perf_counter() - t0
            q = seam_quality(g.points_um, g.crop_of)
            spill = sum(c.spill for c in g.crops) / max(sum(c.generated for c in g.crops[1:]), 1)
            rows[arm].append({"seed": note, "crops": len(g.crops), "points": len(g.points_um), "path_um": g.path_um,
                              "stop": g.stop, "spill": spill, "s_per_crop": secs / max(len(g.crops) - 1, 1), **q})
            print(f"{spec} {arm}: {len(g.crops)} crops, {g.stop}; " + ", ".join(f"{k} {q.get(k, float('nan')):.3g}" for k in KEYS),
                  flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grow_bench.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    lines = [f"Seams of grown neurites (`python bench/grow.py --ckpt {args.ckpt} --seeds {' '.join(args.seeds)} "
             f"--length-um {args.length_um:g} --steps {args.steps} --resample {args.resample}`; mean over "
             f"{len(args.seeds)} seeds; ratios seam/interior, 1 = seamless):", "",
             "| arm | crops | spill | density ratio | thickness ratio | normal angle cross / within (deg) | s per crop |",
             "|---|---|---|---|---|---|---|"]
    for arm, rs in rows.items():
        def m(key):
            return float(np.nanmean([r.get(key, np.nan) for r in rs]))
        lines.append(f"| {arm} | {m('crops'):.1f} | {m('spill'):.2f} | {m('density_ratio'):.2f} | {m('thickness_ratio'):.2f} | "
                     f"{m('cross_normal_angle_deg'):.1f} / {m('within_normal_angle_deg'):.1f} | {m('s_per_crop'):.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.record:
        from common import record

        record(table, "## Grow")
    return 0


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
