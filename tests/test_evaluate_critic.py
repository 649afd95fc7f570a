"""The learned two-sample critic: chance on two samples of one distribution, ~100% on different ones."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import tube_clouds
from mogen.errors import UsageError
from mogen.evaluate.critic import two_sample_test


def test_critic_is_at_chance_on_two_samples_of_one_distribution():
    rng = np.random.default_rng(0)
    a, b = tube_clouds(64, 96, rng, bend=0.4), tube_clouds(64, 96, rng, bend=0.4)
    r = two_sample_test(a, b, steps=60, points=96, seed=0)
    assert (r["n_per_side"], r["n_train_per_side"], r["n_test_per_side"]) == (64, 32, 32)
    assert r["ci95"][0] < 0.5 < r["ci95"][1] and r["p_value"] > 0.05
    assert abs(r["accuracy"] - 0.5) < 0.15


def test_critic_tells_tubes_from_blobs_and_is_deterministic():
    rng = np.random.default_rng(1)
    tubes = tube_clouds(48, 96, rng)
    blobs = (rng.normal(size=(48, 96, 3)) * tubes.std(axis=1, keepdims=True)).astype(np.float32)
    r = two_sample_test(tubes, blobs, steps=40, points=64, seed=3)
    assert r["accuracy"] >= 0.95 and r["p_value"] < 1e-6 and r["points"] == 64
    again = two_sample_test(tubes, blobs, steps=40, points=64, seed=3)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in r.items() if k != "seconds"}


def test_critic_refuses_more_clouds_than_a_side_has():
    x = np.zeros((10, 32, 3), np.float32)
    with pytest.raises(UsageError, match="n=20 clouds per side"):
        two_sample_test(x, x, n=20)
    with pytest.raises(UsageError, match="test_fraction"):
        two_sample_test(x, x, test_fraction=1.0)
