#!/usr/bin/env python
"""Merge classifier on a fixed candidate set: held-out AUROC and cost, optionally A/B against another implementation.

    python bench/classifier.py --data /tmp/data/navis [--seeds 0 1 2] [--steps 1000]
    git show c460086^:mogen/evaluate/classifier.py > /tmp/old_classifier.py   # the hand-written EdgeConv
    python bench/classifier.py --data DIR --baseline /tmp/old_classifier.py   # old vs current, same candidates

Candidates are built once, as the reconstruction benchmark (``mogen benchmark``) builds them:
real fragments packed into volumes and rendered (``mogen.augment.volume.render_volume``, the
default ``VolumeSpec``: 10 µm cubes at 100 nm, 40 objects), over-segmented, and every pair of
touching supervoxels cut into a 256-point view around the contact (``cut_candidates``); label =
same object. Training candidates come from volumes of the train split, test candidates from
volumes of the test split (other cells). Every implementation is trained with the same steps
and seeds; runs alternate between implementations so machine load hits both alike. Prints AUROC
per run and the mean over seeds, training CPU seconds and scoring CPU seconds per 1,000
candidates (CPU time: on a shared machine wall time measures the load).
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


def volume_candidates(root: str, split: str, volumes: int, seed: int):
    """Views [E, 256, 3] and labels (1 = same object) of the touching supervoxel pairs in ``volumes``
    rendered volumes of ``split``'s fragments, 40 objects each (drawn at random, seeded)."""
    from mogen.augment.volume import Obj, VolumeSpec, cut_candidates, render_volume
    from mogen.data import read_split

    sp = read_split(root, split)
    spec, radius = VolumeSpec(), float(sp.manifest["radius_um"])
    views, same = [], []
    for i in range(volumes):
        rng = np.random.default_rng([seed, i])
        members = rng.choice(len(sp), size=spec.objects, replace=spec.objects > len(sp))
        objs = [Obj(np.asarray(sp.points[j], float) * radius, str(sp.neuron_id[j]), "real", f"{split}#{j}") for j in members]
        vol = render_volume(objs, spec, seed=int(rng.integers(2**31)))
        cut = cut_candidates(vol.labels, vol.grid, spec, seed=int(rng.integers(2**31)))
        views.append(cut.views)
        same.append(cut.candidates.same)
    return np.concatenate(views), np.concatenate(same).astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/tmp/data/navis", help="dataset directory from `mogen prepare`")
    p.add_argument("--baseline", default=None, help="a .py file with train_classifier/score to compare against")
    p.add_argument("--steps", type=int, default=1000, help="training steps (eval.augment default)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-volumes", type=int, default=6, help="volumes of train-split fragments (training candidates)")
    p.add_argument("--test-volumes", type=int, default=3, help="volumes of test-split fragments (test candidates)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write all runs as JSON here")
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from mogen.evaluate import classifier as current
    from mogen.evaluate.augment import auroc

    impls = {"current": current}
    if a.baseline:
        impls = {"baseline": load_module(a.baseline), **impls}
    t0 = time.time()
    train_views, train_same = volume_candidates(a.data, "train", a.train_volumes, seed=1)
    test_views, test_same = volume_candidates(a.data, "test", a.test_volumes, seed=4)
    print(f"{a.data}: {len(train_views)} train candidates ({train_same.mean():.2f} true) from {a.train_volumes} volumes, "
          f"{len(test_views)} test candidates ({test_same.mean():.2f} true) from {a.test_volumes} volumes "
          f"({time.time() - t0:.0f} s); steps {a.steps}, threads {a.threads}, load {os.getloadavg()[0]:.1f}", flush=True)
    runs = []
    for seed in a.seeds:
        for name, mod in impls.items():
            c0, w0 = time.process_time(), time.perf_counter()
            model = mod.train_classifier((train_views, train_same), steps=a.steps, seed=seed)
            train_cpu, train_wall = time.process_time() - c0, time.perf_counter() - w0
            c0, w0 = time.process_time(), time.perf_counter()
            s = mod.score(model, test_views)
            score_cpu, score_wall = time.process_time() - c0, time.perf_counter() - w0
            r = dict(impl=name, seed=seed, auroc=auroc(s[test_same == 1], s[test_same == 0]),
                     train_cpu_s=train_cpu, train_wall_s=train_wall,
                     score_cpu_s_per_1000=score_cpu / len(test_views) * 1000, score_wall_s_per_1000=score_wall / len(test_views) * 1000)
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
        Path(a.out).write_text(json.dumps(dict(args=vars(a), n_train=len(train_views), n_test=len(test_views), runs=runs), indent=1))


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
