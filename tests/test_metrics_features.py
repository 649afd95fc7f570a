"""MoGen shape features and feature-MMD on hand-computable cases."""

import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform

from mogen.metrics.features import FEATURE_NAMES, cloud_features
from mogen.metrics.mmd import feature_mmd, mmd_rbf


def tubes(n, points=512, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(-0.8, 0.8, (n, points))
    a = rng.uniform(0, 2 * np.pi, (n, points))
    r = rng.uniform(0.03, 0.1, (n, 1))
    x = np.stack([t, r * np.cos(a), r * np.sin(a)], -1)
    return x + rng.normal(0, 0.005, x.shape) + rng.normal(0, 0.1, (n, 1, 3))


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_features_invariant_to_rotation_and_point_order():
    rng = np.random.default_rng(1)
    x = tubes(6)
    f = cloud_features(x)
    rotated = np.stack([c @ random_rotation(rng).T for c in x])
    shuffled = np.stack([c[rng.permutation(len(c))] for c in rotated])
    np.testing.assert_allclose(cloud_features(shuffled), f, rtol=1e-6, atol=1e-9)


def test_features_by_hand_on_a_square():
    # unit square in the plane z=0, shifted so its centroid is (3.5, 4.5, 0)
    sq = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float) + [3, 4, 0]
    f = dict(zip(FEATURE_NAMES, cloud_features(sq)[0]))
    assert f["centroid_dist"] == pytest.approx(np.hypot(3.5, 4.5))
    assert f["pc_std_1"] == pytest.approx(0.5) and f["pc_std_2"] == pytest.approx(0.5)
    assert f["pc_std_3"] == pytest.approx(0.0, abs=1e-7)
    assert (f["nn_mean"], f["nn_std"]) == pytest.approx((1.0, 0.0))
    assert (f["far_mean"], f["far_std"]) == pytest.approx((np.sqrt(2), 0.0))
    assert (f["mst_max_edge"], f["mst_total"]) == pytest.approx((1.0, 3.0))


def test_mst_and_farthest_match_brute_force_including_disconnected_knn_graph():
    rng = np.random.default_rng(2)
    x = tubes(3, points=300)
    # an outlier cluster of 12 points: the k=8 graph cannot reach it
    x[2, :12] = rng.normal(5.0, 0.01, (12, 3))
    f = cloud_features(torch.as_tensor(x, dtype=torch.float64))
    for c, fc in zip(x, f):
        d = squareform(pdist(c))
        mst = minimum_spanning_tree(d).data
        np.fill_diagonal(d, np.inf)
        assert fc[4] == pytest.approx(d.min(1).mean())
        np.fill_diagonal(d, 0)
        assert fc[6] == pytest.approx(d.max(1).mean())
        assert (fc[8], fc[9]) == pytest.approx((mst.max(), mst.sum()))


def test_feature_mmd_identical_zero_far_large_and_unit_free():
    real, other = tubes(40, seed=3), tubes(40, seed=4)
    assert feature_mmd(real, real) == 0.0
    same_kind = feature_mmd(other, real)
    noise = feature_mmd(np.random.default_rng(5).normal(size=(40, 512, 3)), real)
    assert 0 < same_kind < 50 < noise <= 2000
    # all features are lengths: a common change of unit does not change the score
    f_real, f_other = cloud_features(real), cloud_features(other)
    assert feature_mmd(10 * f_other, 10 * f_real) == pytest.approx(same_kind)
    # the scale set matters: normalising by a wider set shrinks the distances
    assert feature_mmd(f_other, f_real, scale_from=np.concatenate([f_real, 3 * f_real])) < same_kind


def test_mmd_rbf_matches_definition():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(7, 3)) + 1
    k = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * 2.0**2))
    expected = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
    assert mmd_rbf(x, y, sigma=2.0) == pytest.approx(expected)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="generated"):
        feature_mmd(np.zeros((3, 5)), np.zeros((3, 10)))
    with pytest.raises(ValueError, match="NaN"):
        cloud_features(np.full((2, 10, 3), np.nan))


def test_mmd_floor_is_the_expected_score_of_two_samples_of_one_distribution():
    from mogen.metrics.mmd import mmd_floor

    rng = np.random.default_rng(0)
    pool = rng.normal(size=(4000, 10))
    n, m = 32, 48
    scores = [1000 * mmd_rbf(pool[rng.choice(4000, n)], pool[rng.choice(4000, m)]) for _ in range(300)]
    floor = mmd_floor(n, m, pool[:1000])
    assert abs(np.mean(scores) - floor) < 0.08 * floor
    assert abs(floor - 95 * (1 / n + 1 / m)) < 0.1 * floor  # the rule of thumb for 10 unit-std features
