#!/usr/bin/env python
"""Sampling speed: cost of one network call, its kNN share, and time to sample 100 fragments.

    python bench/sample.py                 # tiny and base, 2,048 points, this machine's threads
    python bench/sample.py --threads 2 --record

Per config: milliseconds per cloud per network call (batch of ``--batch`` clouds, kNN
included) and the kNN part alone (k-d tree vs the brute-force reference), then the time
to sample 100 fragments at 20 and 200 network calls (midpoint solver), and at 20 calls with
the half step reusing the step start's neighbour indices (``--knn-every 2``); the per-point
cost of a call at 4 x ``--points`` (8,192: MoGen's setting) over that at ``--points`` (goal
<= 1.3), and a call under ``torch.no_grad`` vs ``torch.inference_mode`` (both interleaved
best-of, same run). Unless
``--full``, only tiny at 20 calls is sampled in full; the other times are extrapolated
(cost = calls x per-call cost) and marked so.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mogen.knn import knn_indices, knn_indices_bruteforce  # noqa: E402
from mogen.model import build_model, count_parameters  # noqa: E402
from mogen.sampling import sample_clouds  # noqa: E402
from common import best_time as timed, check_at_least  # noqa: E402  (bench/)


def tube_like(n_clouds, n_points, seed=0):
    """Noise-free stand-ins for fragments: points on random curved tubes (kNN cost depends on the cloud)."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n_clouds, n_points, generator=g) * 2 - 1
    th = torch.rand(n_clouds, n_points, generator=g) * 6.283
    bend = torch.rand(n_clouds, 1, generator=g) - 0.5
    return torch.stack([s, bend * s**2 + 0.1 * torch.cos(th), 0.1 * torch.sin(th)], -1)


@torch.inference_mode()
def bench_config(name, points, batch, repeats, full):
    torch.manual_seed(0)
    net = build_model("pointinfinity", name, reference_points=points).eval()
    x = tube_like(batch, points)
    t = torch.full((batch,), 0.7)
    cond, mask = torch.zeros(batch, 15), torch.zeros(batch, 5, dtype=torch.bool)
    idx = knn_indices(x, net.config.k)
    call = timed(lambda: net(x, t, cond, mask), repeats) / batch
    net_only = timed(lambda: net(x, t, cond, mask, knn=idx), repeats) / batch
    knn = timed(lambda: knn_indices(x, net.config.k), repeats) / batch
    brute = timed(lambda: knn_indices_bruteforce(x, net.config.k), 1) / batch
    # per-point cost at 4x the points (8,192 for 2,048), and no_grad vs inference_mode: interleaved
    x4 = tube_like(batch, 4 * points, seed=1)
    best = {"base": float("inf"), "x4": float("inf"), "no_grad": float("inf"), "inference": float("inf")}
    runs = {"base": lambda: net(x, t, cond, mask), "x4": lambda: net(x4, t, cond, mask)}
    for _ in range(repeats):
        for key, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - t0)
        with torch.inference_mode(False), torch.no_grad():
            t0 = time.perf_counter()
            net(x.clone(), t.clone(), cond.clone(), mask.clone())
            best["no_grad"] = min(best["no_grad"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        net(x, t, cond, mask)
        best["inference"] = min(best["inference"], time.perf_counter() - t0)
    row = {
        "per_point_ratio_x4": best["x4"] / (4 * best["base"]),
        "ms_no_grad": 1e3 * best["no_grad"] / batch, "ms_inference_mode": 1e3 * best["inference"] / batch,
        "config": name, "params_M": count_parameters(net) / 1e6, "ms_per_call": 1e3 * call,
        "ms_network": 1e3 * net_only, "ms_knn_tree": 1e3 * knn, "ms_knn_brute": 1e3 * brute,
        "clouds_per_s_per_call": 1 / call,
    }
    # Sampling cost is calls x per-call cost; measure what is affordable, extrapolate the rest.
    measured = {}
    for calls in (20, 200):
        if full or (name == "tiny" and calls == 20):
            t0 = time.perf_counter()
            sample_clouds(net, 100, points, calls, "midpoint", batch_size=batch)
            measured[calls] = time.perf_counter() - t0
            row[f"s_100_at_{calls}"] = (measured[calls], "measured")
        elif measured:
            row[f"s_100_at_{calls}"] = (measured[20] * calls / 20, "extrapolated from 20 calls")
        else:
            row[f"s_100_at_{calls}"] = (100 * calls * call, "extrapolated from one call")
    # the midpoint half step reusing the step start's neighbours (sample.py --knn-every 2)
    if 20 in measured:
        t0 = time.perf_counter()
        sample_clouds(net, 100, points, 20, "midpoint", batch_size=batch, knn_every=2)
        row["s_100_at_20_reuse"] = time.perf_counter() - t0
        # per-call cost inside sampling, exact vs reused kNN: best of `repeats` interleaved runs
        # of one batch at 20 calls (single runs on a shared machine vary by 30%)
        best = {1: float("inf"), 2: float("inf")}
        for _ in range(repeats):
            for m in best:
                t0 = time.perf_counter()
                sample_clouds(net, batch, points, 20, "midpoint", batch_size=batch, knn_every=m)
                best[m] = min(best[m], time.perf_counter() - t0)
        row["ms_per_call_sampling"] = 1e3 * best[1] / (batch * 20)
        row["ms_per_call_sampling_reuse"] = 1e3 * best[2] / (batch * 20)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="tiny,base")
    p.add_argument("--points", type=int, default=2048)
    p.add_argument("--batch", type=int, default=16, help="clouds per network call")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--full", action="store_true", help="measure base at 200 calls too (slow on CPU)")
    p.add_argument("--conditions", default="machine shared with other jobs", help="free text for the record")
    p.add_argument("--record", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args(argv)
    # points: more than the 16 neighbours each one sees; threads 0: torch's default
    check_at_least(p, args, {"points": 17, "batch": 1, "repeats": 1, "threads": 0})
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [bench_config(c, args.points, args.batch, args.repeats, args.full) for c in args.configs.split(",")]
    cmd = "python bench/sample.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        f"### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: `{cmd}`",
        "",
        f"{platform.machine()} CPU ({platform.processor() or 'unknown model'}), {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.conditions}. "
        f"{args.points} points per cloud, batches of {args.batch} clouds, best of {args.repeats}.",
        "",
        "| config | params | ms / cloud / call | network only | kNN k-d tree | kNN brute force | clouds/s per call "
        "| 100 fragments, 20 calls | 100 fragments, 200 calls | 100 fragments, 20 calls, kNN every 2 calls "
        "| ms / cloud / call in sampling (best of repeats): exact kNN → reused "
        f"| per-point cost {4 * args.points} / {args.points} pts (goal <= 1.3) | ms / cloud / call: no_grad → inference_mode |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fmt = lambda v: f"{v[0]:.0f} s" + (f" ({v[1]})" if v[1] != "measured" else "")  # noqa: E731
        lines.append(
            f"| {r['config']} | {r['params_M']:.2f} M | {r['ms_per_call']:.1f} | {r['ms_network']:.1f} | "
            f"{r['ms_knn_tree']:.1f} | {r['ms_knn_brute']:.1f} | {r['clouds_per_s_per_call']:.1f} | "
            f"{fmt(r['s_100_at_20'])} | {fmt(r['s_100_at_200'])} | "
            + (f"{r['s_100_at_20_reuse']:.0f} s | {r['ms_per_call_sampling']:.1f} → {r['ms_per_call_sampling_reuse']:.1f} |"
               if "s_100_at_20_reuse" in r else "— | — |")
            + f" {r['per_point_ratio_x4']:.2f} | {r['ms_no_grad']:.1f} → {r['ms_inference_mode']:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        from common import record  # noqa: E402  (bench/)

        record(text, section="## Sampling")
    return 0


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
