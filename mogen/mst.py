"""Euclidean minimum spanning trees of point clouds, on their k-nearest-neighbour graph.

Two users: the condition vector's leaf count (:func:`mogen.data.conditions.mst_leaf_count`,
per fragment at prepare time, so it must be cheap) and the realism features' longest/total MST
edge (:mod:`mogen.metrics.features`, which must be exact).

* :func:`knn_mst`: the MST of the kNN graph. A surface sample's kNN graph (k = 8) almost
  always contains every edge of the Euclidean MST, so inside each connected piece this is
  exact; when the graph falls apart (a crop often holds separate pieces of neurite) the result
  is a spanning forest.
* :func:`euclidean_mst`: that forest with its pieces joined Borůvka-style: the shortest edge
  leaving each component belongs to the Euclidean MST (cut property), so adding those edges
  and repeating until one component is left gives the exact tree.

Examples
--------
>>> import numpy as np
>>> pts = np.array([[0.0, 0, 0], [1, 0, 0], [10, 0, 0], [11, 0, 0]])  # two pieces
>>> sorted(knn_mst(pts, k=1)[2].tolist())  # the 1-NN graph: a forest of two trees
[1.0, 1.0]
>>> sorted(euclidean_mst(pts, k=1)[2].tolist())  # joined by the shortest edge between them
[1.0, 1.0, 9.0]
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial import cKDTree

DEFAULT_K = 8


def _knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, len(x) - 1)
    dist, idx = cKDTree(x).query(x, k=k + 1)
    return dist[:, 1:], idx[:, 1:]


def _graph(n: int, rows: np.ndarray, cols: np.ndarray, w: np.ndarray):
    # csgraph treats a stored 0 as "no edge"; duplicate points are 1e-12 apart instead.
    return coo_matrix((np.maximum(w, 1e-12), (rows, cols)), shape=(n, n)).tocsr()


def _tree(graph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mst = minimum_spanning_tree(graph).tocoo()
    return mst.row.astype(np.int64), mst.col.astype(np.int64), mst.data


def knn_mst(x: np.ndarray, k: int = DEFAULT_K, nn: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MST (spanning forest) of the kNN graph of ``x`` [n, 3]: ``(rows, cols, lengths)``.

    ``nn`` may pass a precomputed ``(dist [n, k], idx [n, k])`` query (self excluded).
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    dist, idx = _knn(x, k) if nn is None else nn
    return _tree(_graph(n, np.repeat(np.arange(n), dist.shape[1]), idx.ravel(), dist.ravel()))


def euclidean_mst(x: np.ndarray, k: int = DEFAULT_K, nn: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact Euclidean minimum spanning tree of ``x`` [n, 3]: ``(rows, cols, lengths)``."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    dist, idx = _knn(x, k) if nn is None else nn
    rows = np.repeat(np.arange(n), dist.shape[1])
    cols, w = idx.ravel(), dist.ravel()
    while True:
        graph = _graph(n, rows, cols, w)
        n_comp, labels = connected_components(graph, directed=False)
        if n_comp == 1:
            return _tree(graph)
        extra = []
        for c in range(n_comp):
            inside = np.flatnonzero(labels == c)
            outside = np.flatnonzero(labels != c)
            d, j = cKDTree(x[outside]).query(x[inside])
            best = int(np.argmin(d))
            extra.append((inside[best], outside[j[best]], d[best]))
        e = np.array(extra)
        rows = np.concatenate([rows, e[:, 0].astype(np.int64)])
        cols = np.concatenate([cols, e[:, 1].astype(np.int64)])
        w = np.concatenate([w, e[:, 2]])
