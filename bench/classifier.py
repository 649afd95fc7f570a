#!/usr/bin/env python
"""Merge classifier on a fixed candidate set: held-out AUROC and cost, optionally A/B against another implementation.

    python bench/classifier.py --data /tmp/data/navis [--seeds 0 1 2] [--steps 1000]
    git show OLDREV:mogen/evaluate/classifier.py > /tmp/old_classifier.py
    python bench/classifier.py --data DIR --baseline /tmp/old_classifier.py   # old vs current, same candidates

Candidates are built once (``mogen.augment.examples.build_candidates``, 256 points, as
``eval.augment`` does): training candidates from the train neurons (one held out when the
dataset has no val split), test candidates from the test neurons, their false merges partnered
with other test neurons or, when there is one, the held-out neurons. Every implementation is
trained with the same steps and seeds; runs alternate between implementations so machine load
hits both alike. Prints AUROC per run and the mean over seeds, training CPU seconds and scoring
CPU seconds per 1,000 candidates (CPU time: on a shared machine wall time measures the load).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_module(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/tmp/data/navis", help="dataset directory from `mogen prepare`")
    p.add_argument("--baseline", default=None, help="a .py file with train_classifier/score to compare against")
    p.add_argument("--steps", type=int, default=1000, help="training steps (eval.augment default)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train", type=int, default=2000, help="training candidates")
    p.add_argument("--test", type=int, default=800, help="test candidates")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write all runs as JSON here")
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from mogen.augment.examples import build_candidates
    from mogen.data import read_manifest, read_split
    from mogen.evaluate import classifier as current
    from mogen.evaluate.augment import auroc

    impls = {"current": current}
    if a.baseline:
        impls = {"baseline": load_module(a.baseline), **impls}
    man = read_manifest(a.data)
    tr, te = read_split(a.data, "train"), read_split(a.data, "test")
    train_neurons = sorted(man["splits"]["train"]["neurons"])
    partners = None
    if len(man["splits"]["test"]["neurons"]) < 2:
        if man["splits"]["val"]["neurons"]:
            va = read_split(a.data, "val")
            partners = (np.asarray(va.points), va.neuron_id)
        else:  # as eval.augment does: a train neuron held out, never trained on
            held = train_neurons.pop()
            rows = np.flatnonzero(tr.neuron_id == held)
            partners = (np.asarray(tr.points[rows]), tr.neuron_id[rows])
    rows = np.flatnonzero(np.isin(tr.neuron_id, train_neurons))
    t0 = time.time()
    ctr = build_candidates(np.asarray(tr.points[rows]), tr.neuron_id[rows], a.train, n_points=256, seed=1)
    cte = build_candidates(np.asarray(te.points), te.neuron_id, a.test, n_points=256, seed=4, partners=partners)
    print(f"{a.data}: {len(ctr)} train candidates from {len(train_neurons)} neurons, {len(cte)} test candidates "
          f"({time.time() - t0:.0f} s); steps {a.steps}, threads {a.threads}, load {os.getloadavg()[0]:.1f}", flush=True)
    runs = []
    for seed in a.seeds:
        for name, mod in impls.items():
            c0, w0 = time.process_time(), time.perf_counter()
            model = mod.train_classifier((ctr.points, ctr.labels), steps=a.steps, seed=seed)
            train_cpu, train_wall = time.process_time() - c0, time.perf_counter() - w0
            c0, w0 = time.process_time(), time.perf_counter()
            s = mod.score(model, cte.points)
            score_cpu, score_wall = time.process_time() - c0, time.perf_counter() - w0
            r = dict(impl=name, seed=seed, auroc=auroc(s[cte.labels == 1], s[cte.labels == 0]),
                     train_cpu_s=train_cpu, train_wall_s=train_wall,
                     score_cpu_s_per_1000=score_cpu / len(cte) * 1000, score_wall_s_per_1000=score_wall / len(cte) * 1000)
            runs.append(r)
            print(f"{name:9s} seed {seed}: AUROC {r['auroc']:.3f}  train {train_cpu:6.1f} s CPU ({train_wall:6.1f} wall)  "
                  f"score {r['score_cpu_s_per_1000']:5.2f} s CPU / 1000", flush=True)
    for name in impls:
        rs = [r for r in runs if r["impl"] == name]
        au = np.array([r["auroc"] for r in rs])
        print(f"{name:9s} AUROC {au.mean():.3f} ± {au.std(ddof=1) if len(au) > 1 else 0.0:.3f} (n={len(au)} seeds)  "
              f"train {np.mean([r['train_cpu_s'] for r in rs]):.1f} s CPU / {a.steps} steps  "
              f"score {np.mean([r['score_cpu_s_per_1000'] for r in rs]):.2f} s CPU / 1000 candidates")
    if a.out:
        Path(a.out).write_text(json.dumps(dict(args=vars(a), n_train=len(ctr), n_test=len(cte), runs=runs), indent=1))


if __name__ == "__main__":
    main()
