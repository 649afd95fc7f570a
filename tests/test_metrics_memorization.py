"""The memorisation check flags copies of training fragments and nothing else."""

import numpy as np

from mogen.metrics.memorization import memorization, nearest_chamfer
from mogen.metrics.pointcloud import chamfer


def test_copies_flagged_new_samples_not():
    rng = np.random.default_rng(0)
    train, heldout, fresh = (rng.normal(size=(k, 200, 3)) for k in (30, 40, 6))
    exact = train[:3]
    jittered = train[3:6] + rng.normal(0, 0.01, (3, 200, 3))
    shuffled = np.stack([c[rng.permutation(200)] for c in train[6:8]])  # order must not matter
    generated = np.concatenate([exact, jittered, shuffled, fresh])
    m = memorization(generated, train, heldout, points=50, copy_quantile=0.0)
    assert m["is_copy"][:8].all() and m["real_flagged_fraction"] == 0.0
    assert (m["ratio"][:8] < 0.1).all() and (m["ratio"][8:] > 0.5).all()
    # fresh samples are as far from training as real held-out ones: flagged only by chance
    # (each with probability ~1/41 under copy_quantile=0, i.e. "closer than every real one")
    assert m["is_copy"][8:].sum() <= 1


def test_nearest_chamfer_is_exact_full_resolution():
    rng = np.random.default_rng(1)
    pool = rng.normal(size=(12, 100, 3))
    q = pool[[4]] + 0.001
    brute = min(chamfer(q[0], p) for p in pool)
    assert nearest_chamfer(q, pool, points=20, candidates=3)[0] == brute
