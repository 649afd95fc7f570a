#!/usr/bin/env python
"""Data pipeline throughput, and how much faster preparation is than training eats its output.

    python bench/data.py                          # navis example neurons, all cores
    python bench/data.py --threads 1              # one worker process vs one torch thread
    python bench/data.py --inputs ../shared/data/skeletons --max-fragments 100

One run measures, on the same machine and with the same number of CPU threads W:

- **prepare**: a whole ``mogen prepare`` (read, cut, cable ends + caliber, write, split), run in this
  process with ``--workers W``, in fragments/s of wall time, and in CPU seconds per fragment
  (this process plus its workers);
- **training**: full training steps of the ``tiny`` model at batch 8 x 2,048 points (noise
  pairing, kNN, forward, backward, AdamW) on W torch threads, in fragments consumed per second,
  timed before and after the prepare run (their mean is used);
- the **ratio** prepare / training (goal >= 10), from wall times and from CPU times; the CPU
  ratio barely moves with other jobs on the machine, the wall ratio does;
- the **loader** (memmap read, rotation, jitter, condition vector) in fragments/s at batch 64,
  which must also stay far above what training consumes;
- per-fragment costs of the two stages of cutting (``Cropper.crop``, ``crop_topology``), in
  CPU ms, for a mesh and a skeleton tube at 2,048 points.

The load average is printed before and after: on a shared machine absolute figures swing by
2x or more, ratios measured in one run much less.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # before ROOT: bench/train.py, not the root train.py

from mogen.data import prepare  # noqa: E402
from mogen.data.dataset import DatasetWriter, make_loader, read_manifest, write_manifest  # noqa: E402
from mogen.data.fragments import Cropper, crop_topology, Fragments, anchors_along_cable, neuron_surface  # noqa: E402
from mogen.data.neuron import navis_example  # noqa: E402
from mogen.data.surface import skeleton_geometry  # noqa: E402
from train import make_step  # noqa: E402  (bench/)


class DescendantsCPU:
    """CPU seconds used by this process's descendants while it runs (prepare's workers are
    grandchildren under a fork server, which resource.RUSAGE_CHILDREN never sees): polled."""

    def __init__(self, every: float = 0.1):
        import psutil

        self.me, self.every, self.seen, self.stop = psutil.Process(), every, {}, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self.stop.is_set():
            for child in self.me.children(recursive=True):
                try:
                    t = child.cpu_times()
                    self.seen[child.pid] = t.user + t.system
                except Exception:  # gone between listing and asking
                    pass
            self.stop.wait(self.every)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_prepare(inputs: list[str], workers: int, points: int, max_fragments: int) -> dict:
    """One in-process ``mogen prepare`` run: fragments, wall seconds, CPU seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        parser = argparse.ArgumentParser()
        prepare.add_arguments(parser)
        args = parser.parse_args([*inputs, "--out", f"{tmp}/data", "--workers", str(workers), "--points", str(points),
                                  "--max-fragments-per-neuron", str(max_fragments), "--no-preview", "--on-error", "skip"])
        wall, cpu = time.perf_counter(), own_cpu()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), DescendantsCPU() as kids:
            code = prepare.run(args)
        wall, cpu = time.perf_counter() - wall, own_cpu() - cpu + kids.seconds
        if code != 0:
            raise SystemExit(f"bench/data.py: mogen prepare failed (exit {code})")
        manifest = read_manifest(f"{tmp}/data")
    frags = sum(s["fragments"] for s in manifest["splits"].values())
    return {"fragments": frags, "neurons": len(manifest["neurons"]), "wall": wall, "cpu": cpu}


def bench_training(threads: int, steps: int) -> dict:
    """Training steps of tiny at batch 8 x 2,048 points: fragments consumed per wall second and per CPU second."""
    torch.set_num_threads(threads)
    _, step = make_step("tiny", 2048, 8, torch.device("cpu"), True, False)
    step()  # warm-up
    walls, cpus = [], []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"frag_per_s": 8 / float(np.median(walls)), "cpu_per_frag": float(np.median(cpus)) / 8}


def bench_stages(neuron, n_points: int, n_frag: int, radius: float = 10.0) -> tuple[float, float]:
    """CPU ms per fragment of cropping and of the crop's cable ends + caliber (one process, one thread)."""
    rng = np.random.default_rng(0)
    xyz, node_radius, _, pidx = skeleton_geometry(neuron.skeleton)
    anchors, _ = anchors_along_cable(xyz, pidx, 5.0, rng)
    anchors = anchors[rng.choice(len(anchors), min(n_frag, len(anchors)), replace=False)]
    cropper = Cropper(neuron_surface(neuron, radius), radius)
    t = time.process_time()
    crops = [c for c in (cropper.crop(a, n_points, rng)[0] for a in anchors) if c is not None]
    t_crop = time.process_time() - t
    t = time.process_time()
    crop_topology(xyz, pidx, np.nan_to_num(node_radius), anchors, radius)
    t_mst = time.process_time() - t
    return 1e3 * t_crop / len(crops), 1e3 * t_mst / len(crops)


def bench_loader(n_points: int, batch: int = 64, n_frag: int = 1024, seconds: float = 3.0) -> float:
    with tempfile.TemporaryDirectory() as d:
        w = DatasetWriter(d, n_points)
        rng = np.random.default_rng(0)
        pts = rng.standard_normal((n_frag, n_points, 3)).astype(np.float32) * 0.3
        w.add("x", Fragments(pts, np.zeros((n_frag, 3), np.float32), np.full(n_frag, 3, np.int8),
                             np.full(n_frag, 2, np.int32), np.full(n_frag, 0.05, np.float32), 1.0, n_frag, 0))
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


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="prepare workers = torch threads (default: all cores)")
    p.add_argument("--inputs", nargs="*", default=[], help="SWC/mesh files or folders to prepare (default: the 5 navis example neurons)")
    p.add_argument("--points", type=int, default=2048)
    p.add_argument("--max-fragments", type=int, default=500, help="--max-fragments-per-neuron of the prepare run")
    p.add_argument("--train-steps", type=int, default=8, help="timed training steps before and after prepare")
    p.add_argument("--stage-fragments", type=int, default=60, help="fragments timed per stage")
    args = p.parse_args(argv)
    w = args.threads
    print(f"# bench/data.py  {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC  {platform.machine()}  {os.cpu_count()} cores  "
          f"W={w} (prepare workers = torch threads)  load average {load()}")
    print(f"command: python bench/data.py {' '.join(sys.argv[1:] if argv is None else argv)}\n")

    before = bench_training(w, args.train_steps)
    prep = bench_prepare(args.inputs, w, args.points, args.max_fragments)
    after = bench_training(w, args.train_steps)
    train_rate = (before["frag_per_s"] + after["frag_per_s"]) / 2
    train_cpu = (before["cpu_per_frag"] + after["cpu_per_frag"]) / 2
    prep_rate = prep["fragments"] / prep["wall"]
    prep_cpu = prep["cpu"] / prep["fragments"]
    what = " ".join(args.inputs) or "5 navis example neurons"
    print(f"| figure (W = {w}) | value |")
    print("|---|---|")
    print(f"| prepare ({what}: {prep['neurons']} neurons, {prep['fragments']} fragments of {args.points} points) | "
          f"{prep['wall']:.1f} s wall, {prep_rate:.1f} fragments/s, {1e3 * prep_cpu:.1f} CPU ms/fragment |")
    print(f"| training tiny, batch 8 x 2,048 (before / after prepare) | {before['frag_per_s']:.1f} / {after['frag_per_s']:.1f} "
          f"fragments/s, {1e3 * train_cpu:.0f} CPU ms/fragment |")
    print(f"| **ratio prepare / training, wall (goal >= 10)** | **{prep_rate / train_rate:.1f}** |")
    print(f"| ratio prepare / training, CPU time | {train_cpu / prep_cpu:.1f} |")
    loader = {n: bench_loader(n) for n in (2048, 8192)}
    print(f"| loader (batch 64, rotate + jitter + condition; 1 process), 2,048 / 8,192 points | "
          f"{loader[2048]:.0f} / {loader[8192]:.0f} fragments/s |")
    print(f"| ratio loader / training at 2,048 points | {loader[2048] / train_rate:.0f} |")

    neuron = navis_example(0)
    skeleton = type(neuron)(**{**neuron.__dict__, "mesh": None, "kind": "skeleton"})
    for name, n in (("EM mesh", neuron), ("skeleton tube", skeleton)):
        crop, mst = bench_stages(n, args.points, args.stage_fragments)
        print(f"| cut one fragment, {name} (navis {neuron.id}), {args.points} points: crop / cable ends + caliber | "
              f"{crop:.2f} / {mst:.2f} CPU ms |")
    print(f"\nload average after: {load()}")
    if w > 1 and os.getloadavg()[0] > os.cpu_count():
        print(f"note: the machine is busier than its {os.cpu_count()} cores; torch's {w} OpenMP threads then wait on each "
              "other and training slows far more than the prepare workers do: the W = 1 ratio is the fair one here")
    return 0


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
