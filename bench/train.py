#!/usr/bin/env python
"""Training throughput: points/s, achieved FLOP/s vs this machine's matmul peak, linear cost in N.

    python bench/train.py                      # tiny, batches of 8 x 2,048 points
    python bench/train.py --config base --record

Figures (all measured in the same run, so their ratios are meaningful on a busy machine):

- points/s of full training steps (noise pairing, kNN, forward, backward, AdamW);
- FLOPs of one step counted by ``torch.utils.flop_counter`` (matmuls and attention),
  divided by the step time = achieved FLOP/s; divided by the FLOP/s of a large dense
  float32 matmul timed here = model FLOP utilisation (MFU);
- step time per point at 2,048 vs 8,192 points per cloud (MoGen's setting; same batch,
  interleaved best-of): a cost linear in N gives a ratio near 1 (goal <= 1.3);
- peak memory (CUDA allocator on GPU, process max RSS on CPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_backward_flop, sdpa_flop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mogen.data.conditions import COND_DIM, COND_GROUPS  # noqa: E402
from mogen.flow import drop_conditions, flow_matching_loss  # noqa: E402
from mogen.model import build_model, count_parameters  # noqa: E402
from common import best_time as time_steps, check_at_least  # noqa: E402  (bench/)

# torch counts attention FLOPs for its GPU kernels only; the CPU flash kernel does the same work.
for _op, _formula in (
    ("_scaled_dot_product_flash_attention_for_cpu", lambda q, k, v, *a, **kw: sdpa_flop(q, k, v)),
    ("_scaled_dot_product_flash_attention_for_cpu_backward", lambda g, q, k, v, *a, **kw: sdpa_backward_flop(g, q, k, v)),
):
    try:
        register_flop_formula(getattr(torch.ops.aten, _op))(_formula)
    except (AttributeError, RuntimeError, ValueError):  # absent, or already registered by a newer torch
        pass


def matmul_peak(device, dtype, size=2048, repeats=5):
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_step(name, points, batch, device, pair, bf16):
    torch.manual_seed(0)
    model = build_model("pointinfinity", name, reference_points=points).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x1 = (torch.rand(batch, points, 3, generator=g) * 2 - 1).to(device)
    cond = torch.zeros(batch, COND_DIM, device=device)

    def step():
        mask = drop_conditions(batch, len(COND_GROUPS), generator=g).to(device)
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
        with ctx:
            loss = flow_matching_loss(model, x1, cond, mask, g, "cosine", 1.0, pair)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)

    return model, step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny")
    p.add_argument("--points", type=int, default=2048)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-pair", action="store_true", help="time steps without noise pairing")
    p.add_argument("--conditions", default="machine shared with other jobs", help="free text for the record")
    p.add_argument("--record", action="store_true", help="append the results to BENCHMARKS.md")
    args = p.parse_args(argv)
    # points: more than the 16 neighbours each one sees; threads 0: torch's default
    check_at_least(p, args, {"points": 17, "batch": 1, "repeats": 1, "threads": 0})
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bf16 = device.type == "cuda"
    pair = not args.no_pair

    model, step = make_step(args.config, args.points, args.batch, device, pair, bf16)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    seconds = time_steps(step, args.repeats)
    peak = matmul_peak(device, torch.bfloat16 if bf16 else torch.float32)
    achieved = flops / seconds
    # Linear cost: time per point at 2,048 vs 8,192 points (no pairing: the bench is about the network),
    # the two sizes interleaved so that a change in the machine's load hits both.
    steps = {n: make_step(args.config, n, args.batch, device, False, bf16)[1] for n in (2048, 8192)}
    per_point = {n: float("inf") for n in steps}
    for n, s in steps.items():
        s()  # warm-up
    for _ in range(max(1, args.repeats - 1)):
        for n, s in steps.items():
            t0 = time.perf_counter()
            s()
            per_point[n] = min(per_point[n], (time.perf_counter() - t0) / (args.batch * n))
    if device.type == "cuda":
        mem = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (CUDA allocator peak)"
    else:
        mem = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process max RSS, incl. the 8,192-point steps)"

    cmd = "python bench/train.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = "\n".join([
        f"### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: `{cmd}`",
        "",
        f"{platform.machine()} {device.type.upper()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {'bf16 autocast' if bf16 else 'float32'}, {args.conditions}.",
        f"`{args.config}` ({count_parameters(model) / 1e6:.2f} M params), batch {args.batch} x {args.points} points, "
        f"noise pairing {'on' if pair else 'off'}, best of {args.repeats} steps.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| step time | {seconds * 1e3:.0f} ms |",
        f"| training points/s | {args.batch * args.points / seconds:,.0f} |",
        f"| FLOPs per step (flop_counter) | {flops / 1e9:.2f} G |",
        f"| achieved FLOP/s | {achieved / 1e9:.1f} G |",
        f"| dense matmul FLOP/s (2048^2, same run) | {peak / 1e9:.1f} G |",
        f"| MFU (achieved / matmul; goal >= 0.35) | {achieved / peak:.2f} |",
        f"| step time per point, 2,048 pts (no pairing) | {per_point[2048] * 1e6:.2f} us |",
        f"| step time per point, 8,192 pts (no pairing) | {per_point[8192] * 1e6:.2f} us |",
        f"| ratio 8,192 / 2,048 per point (goal <= 1.3) | {per_point[8192] / per_point[2048]:.2f} |",
        f"| peak memory | {mem} |",
    ]) + "\n"
    print(text)
    if args.record:
        sys.path.insert(0, str(Path(__file__).parent))
        from common import record  # noqa: E402  (bench/)

        record(text, section="## Training")
    return 0


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
