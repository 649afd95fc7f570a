"""Chamfer / EMD matrices and the PointFlow metrics on hand-checkable cases."""

import itertools

import numpy as np
import pytest
import torch

from mogen.metrics.pointcloud import (
    chamfer,
    chamfer_matrix,
    emd,
    emd_matrix,
    one_nna,
    pointflow_metrics,
    subsample,
)


def brute_chamfer(x, y):
    d = torch.cdist(torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)) ** 2
    return float(d.min(1).values.mean() + d.min(0).values.mean())


def test_chamfer_matrix_matches_brute_force_blocked_and_symmetric():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(11, 40, 3, generator=g), torch.rand(7, 30, 3, generator=g)
    expected = torch.tensor([[brute_chamfer(x, y) for y in b] for x in a], dtype=torch.float64)
    torch.testing.assert_close(chamfer_matrix(a, b, block=4), expected, atol=1e-6, rtol=1e-5)
    sym = chamfer_matrix(a, block=3)
    expected = torch.tensor([[brute_chamfer(x, y) for y in a] for x in a], dtype=torch.float64)
    torch.testing.assert_close(sym, expected, atol=1e-6, rtol=1e-5)
    assert chamfer(a[0], b[1]) == pytest.approx(brute_chamfer(a[0], b[1]))


def test_chamfer_of_two_points_by_hand():
    # x = {0}, y = {(1,0,0),(3,0,0)}: x->y 1^2, y->x (1 + 9)/2 = 5 -> 6 (squared distances)
    x = torch.zeros(1, 1, 3)
    y = torch.tensor([[[1.0, 0, 0], [3.0, 0, 0]]])
    assert float(chamfer_matrix(x, y)) == pytest.approx(6.0)


def test_exact_emd_equals_brute_force_over_all_matchings():
    rng = np.random.default_rng(1)
    for _ in range(3):
        x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
        best = min(
            np.linalg.norm(x - y[list(p)], axis=1).mean() for p in itertools.permutations(range(6))
        )
        assert emd(x, y) == pytest.approx(best)
    m = emd_matrix(rng.normal(size=(4, 6, 3)))
    assert torch.allclose(m, m.T) and (m.diagonal() == 0).all()
    with pytest.raises(ValueError, match="equal size"):
        emd(x, y[:5])


def test_identical_sets_far_sets_and_same_distribution():
    g = torch.Generator().manual_seed(2)
    ref = torch.randn(40, 32, 3, generator=g)
    d_rr = chamfer_matrix(ref)
    same = pointflow_metrics(d_rr, d_rr, d_rr)
    assert same["MMD"] == pytest.approx(0.0, abs=1e-5) and same["COV"] == 1.0
    # exact copies are each other's nearest neighbours: the classifier is always wrong
    assert same["1-NNA"] == 0.0
    far = ref + 10.0
    m = pointflow_metrics(chamfer_matrix(far, ref), chamfer_matrix(far), d_rr)
    assert m["1-NNA"] == 1.0
    # an independent sample of the same distribution: chance level
    other = torch.randn(40, 32, 3, generator=g)
    m = pointflow_metrics(chamfer_matrix(other, ref), chamfer_matrix(other), d_rr)
    assert 0.3 <= m["1-NNA"] <= 0.7 and m["COV"] > 0.4


def test_one_nna_by_hand():
    # G = {0, 1}, R = {10, 11} on a line: each point's neighbour is in its own set
    pts = torch.tensor([0.0, 1.0, 10.0, 11.0])
    d = (pts[:, None] - pts[None]).abs()
    assert one_nna(d[:2, 2:], d[:2, :2], d[2:, 2:]) == 1.0
    # G = {0, 10}, R = {1, 11}: every neighbour is in the other set
    order = torch.tensor([0, 2, 1, 3])
    d = d[order][:, order]
    assert one_nna(d[:2, 2:], d[:2, :2], d[2:, 2:]) == 0.0


def test_subsample_is_reproducible_and_keeps_points():
    x = torch.rand(3, 100, 3)
    s = subsample(x, 10, seed=4)
    assert s.shape == (3, 10, 3) and torch.equal(s, subsample(x, 10, seed=4))
    assert all((s[i][:, None] == x[i][None]).all(-1).any(1).all() for i in range(3))
    assert subsample(x, None).shape == (3, 100, 3)
