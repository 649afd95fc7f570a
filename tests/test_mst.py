"""Exact Euclidean MSTs (mogen.mst) against a dense MST, and the shape features against a direct
re-implementation of MoGen's definitions (mogen.metrics.features)."""

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import distance_matrix

from mogen.metrics.features import FEATURE_NAMES, cloud_features
from mogen.mst import euclidean_mst


def clouds(kind: str, n: int, rng) -> np.ndarray:
    if kind == "gaussian":
        return rng.normal(size=(n, 3))
    if kind == "clumps":  # beads on a string: what a clumping generator makes
        centres = np.cumsum(rng.normal(size=(20, 3)) * 0.2, 0)
        return centres[rng.integers(20, size=n)] + rng.normal(size=(n, 3)) * 0.005
    if kind == "sphere":  # clipped samples pile points on the crop sphere
        x = rng.normal(size=(n, 3)) * 0.8
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1.0)
    if kind == "pieces":  # parallel neurite pieces with a gap
        t = rng.uniform(-1, 1, n)
        a = rng.uniform(0, 2 * np.pi, n)
        x = np.stack([t, 0.05 * np.cos(a), 0.05 * np.sin(a)], 1)
        x[: n // 2, 1] += 0.3
        return x
    if kind == "duplicates":
        x = rng.normal(size=(n // 2, 3))
        return np.concatenate([x, x])
    raise ValueError(kind)


def dense_distances(x: np.ndarray) -> np.ndarray:
    """All pairwise distances as a sparse graph; duplicates get a tiny positive length (csgraph
    reads 0 as "no edge"; and its dense input path mishandles such values, hence csr)."""
    d = distance_matrix(x, x)
    d[d == 0] = 1e-12
    np.fill_diagonal(d, 0.0)
    return csr_matrix(d)


@pytest.mark.parametrize("kind", ["gaussian", "clumps", "sphere", "pieces", "duplicates"])
def test_euclidean_mst_equals_dense_mst(kind):
    rng = np.random.default_rng(0)
    x = clouds(kind, 600, rng)
    rows, cols, w = euclidean_mst(x)
    dense = minimum_spanning_tree(dense_distances(x)).tocoo()
    assert len(w) == len(x) - 1  # a spanning tree
    assert np.isclose(w.sum(), dense.data.sum()) and np.isclose(w.max(), dense.data.max())
    assert np.allclose(np.linalg.norm(x[rows] - x[cols], axis=1), w)


def mogen_features(x: np.ndarray) -> np.ndarray:
    """MoGen's ten features computed the direct way (dense distances, dense MST, eigenvalues)."""
    c = x.mean(0)
    cov = (x - c).T @ (x - c) / len(x)
    eig = np.sort(np.linalg.eigvalsh(cov))[::-1]
    d = distance_matrix(x, x)
    np.fill_diagonal(d, np.inf)
    nn = d.min(1)
    np.fill_diagonal(d, 0.0)
    far = d.max(1)
    mst = minimum_spanning_tree(dense_distances(x)).data
    return np.array([np.linalg.norm(c), *np.sqrt(eig), nn.mean(), nn.std(), far.mean(), far.std(), mst.max(), mst.sum()])


@pytest.mark.parametrize("kind", ["gaussian", "clumps", "sphere", "pieces"])
def test_features_match_direct_definitions(kind):
    rng = np.random.default_rng(2)
    x = clouds(kind, 400, rng)
    ours = cloud_features(x[None])[0]
    ref = mogen_features(x)
    for name, a, b in zip(FEATURE_NAMES, ours, ref):
        assert np.isclose(a, b, rtol=1e-6, atol=1e-9), (kind, name, a, b)


def test_join_components_by_pointer_jumping():
    from mogen.mst import _join

    comp = np.array([0, 0, 1, 2, 3, 4, 5])
    # 0<->1 a pair with 2 hanging on 1; 3 -> 4 -> 5 -> 3 a cycle (possible only among tied lengths)
    count, labels = _join(comp, 6, np.array([1, 0, 1, 4, 5, 3]))
    assert count == 2
    assert len(set(labels[:4])) == 1 and len(set(labels[4:])) == 1 and labels[0] != labels[-1]
