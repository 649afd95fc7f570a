#!/usr/bin/env python
"""Learned two-sample critic: held-out accuracy of sets against a dataset's test fragments, and its cost.

    python bench/critic.py --data /tmp/data/navis [--samples RUN/samples.npz] [--n 256] [--seeds 0 1 2]

Sets scored against held-out test fragments (n per side, 50% = indistinguishable): real train
fragments (the ceiling: other neurons of the same data), the random-cylinder and Gaussian-blob
floors of ``mogen.evaluate.baselines`` and, with ``--samples``, a generator's samples. A control
with ``--same``: one half of the test fragments against the other half (same neurons, disjoint
fragments; at most half the test split per side), where a calibrated critic scores 50%. Prints
one line per set and seed (accuracy, 95% CI, wall and CPU seconds) and the mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/tmp/data/navis", help="dataset directory from `mogen prepare` (train and test splits)")
    p.add_argument("--samples", default=None, help="samples.npz of a generator to score too")
    p.add_argument("--n", type=int, default=256, help="clouds per side")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--points", type=int, default=256)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--same", action="store_true", help="also score half the test fragments against the other half")
    p.add_argument("--only", nargs="+", default=None, help="score only these sets (e.g. real_test_half)")
    p.add_argument("--out", default=None, help="write all results as JSON here")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from mogen.data import read_split
    from mogen.evaluate.baselines import make_baselines
    from mogen.evaluate.critic import two_sample_test
    from mogen.samples import read_samples

    test, train = read_split(args.data, "test"), read_split(args.data, "train")
    reference = np.asarray(test.points, dtype=np.float32)
    sets = {}  # name -> (clouds, reference, n per side)
    if args.samples:
        sets["generated"] = (read_samples(args.samples).points_unit, reference, args.n)
    base = make_baselines(reference, train.points, n=args.n, seed=0)
    for name in ("real_train", "random_cylinder", "gaussian_blob"):
        sets[name] = (base[name], reference, args.n)
    if args.same:
        order = np.random.default_rng(0).permutation(len(reference))
        half = len(reference) // 2
        sets["real_test_half"] = (reference[order[half:]], reference[order[:half]], min(args.n, half))
    if args.only:
        sets = {k: v for k, v in sets.items() if k in args.only}
    print(f"reference: {len(reference)} test fragments of {args.data}; n={args.n} per side, steps={args.steps}, "
          f"points={args.points}, threads={args.threads}, load {os.getloadavg()[0]:.1f}", flush=True)
    results = []
    for name, (clouds, ref, n) in sets.items():
        for seed in args.seeds:
            c0 = time.process_time()
            r = two_sample_test(clouds, ref, n=n, steps=args.steps, points=args.points, seed=seed)
            r.update(set=name, cpu_seconds=time.process_time() - c0)
            results.append(r)
            print(f"{name:16s} n={n} seed {seed}: accuracy {r['accuracy']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] "
                  f"auroc {r['auroc']:.3f} train-acc {r['train_accuracy']:.3f}  wall {r['seconds']:.1f} s  cpu {r['cpu_seconds']:.1f} s",
                  flush=True)
        acc = [r["accuracy"] for r in results if r["set"] == name]
        print(f"{name:16s} mean accuracy {np.mean(acc):.3f} ± {np.std(acc, ddof=1) if len(acc) > 1 else 0:.3f} "
              f"over {len(acc)} seeds", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
