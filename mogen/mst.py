"""Euclidean minimum spanning trees of point clouds, on their k-nearest-neighbour graph.

Two users: the condition vector's leaf count (:func:`mogen.data.conditions.mst_leaf_count`,
per fragment at prepare time, so it must be cheap) and the realism features' longest/total MST
edge (:mod:`mogen.metrics.features`, which must be exact).

* :func:`knn_mst`: the MST of the kNN graph, cheap; a spanning forest when the graph falls
  apart (a crop often holds separate pieces of neurite: each keeps its own leaves). It can
  miss a Euclidean-MST edge whose ends are not among each other's k nearest neighbours.
* :func:`euclidean_mst`: the exact Euclidean MST, by Borůvka rounds that read nearest
  other-component neighbours from k-NN lists and search exactly only where a list cannot
  tell (tested against a dense MST on clumpy, gappy and sphere-piled clouds).

Examples
--------
>>> import numpy as np
>>> pts = np.array([[0.0, 0, 0], [1, 0, 0], [10, 0, 0], [11, 0, 0]])  # two pieces
>>> sorted(knn_mst(pts, k=1)[2].tolist())  # the 1-NN graph: a forest of two trees
[1.0, 1.0]
>>> sorted(euclidean_mst(pts, k=1)[2].tolist())  # the exact tree joins them
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


def euclidean_mst(x: np.ndarray, k: int = 16, nn: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact Euclidean minimum spanning tree of ``x`` [n, 3]: ``(rows, cols, lengths)``.

    Borůvka: every round, each component adds its shortest edge to another component (by
    the cut property that edge is in the MST). A point's nearest neighbour outside its own
    component is read from its ``k`` nearest neighbours when one of them is outside; only
    points whose whole list is inside AND whose k-th neighbour is nearer than the component's
    best edge so far (otherwise they cannot beat it) are searched exactly, against a k-d tree
    of the points outside. So the result is exact for any cloud (clumps, gaps, points piled
    on a sphere), at about the cost of the k-NN query. ``nn`` may pass a precomputed
    ``(dist [n, k'], idx [n, k'])`` query (self excluded).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 3)) * [1.0, 0.05, 0.05]       # a rod ...
    >>> x[:150] += [0.0, 0.5, 0.0]                              # ... cut into two parallel pieces
    >>> from scipy.spatial import distance_matrix
    >>> dense = minimum_spanning_tree(distance_matrix(x, x)).sum()
    >>> bool(np.isclose(euclidean_mst(x, k=4)[2].sum(), dense))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    dist, idx = _knn(x, k) if nn is None else nn
    reach = dist[:, -1]  # a point's nearest outside neighbour is at least this far when its list is all inside
    rows, cols, lengths = [], [], []
    n_comp, comp = n, np.arange(n)
    while n_comp > 1:
        outside = comp[idx] != comp[:, None]
        has = outside.any(1)
        first = np.argmax(outside, 1)
        d_out = np.where(has, dist[np.arange(n), first], np.inf)
        j_out = np.where(has, idx[np.arange(n), first], -1)
        best = np.full(n_comp, np.inf)
        np.minimum.at(best, comp, d_out)
        # exact search only where the k-NN list cannot tell and the point could still win
        need = ~has & (reach < best[comp])
        for c in np.unique(comp[need]):
            inside = np.flatnonzero(need & (comp == c))
            others = np.flatnonzero(comp != c)
            d, j = cKDTree(x[others]).query(x[inside])
            d_out[inside], j_out[inside] = d, others[j]
        order = np.lexsort((np.arange(n), d_out, comp))  # per component: its shortest edge first
        firsts = order[np.r_[True, comp[order][1:] != comp[order][:-1]]]
        rows.append(firsts)
        cols.append(j_out[firsts])
        lengths.append(d_out[firsts])
        # Every component's shortest outgoing edge is an MST edge (cut property); with ties two
        # could close a cycle, so the running tree is the MST of the edges chosen so far.
        graph = _graph(n, np.concatenate(rows), np.concatenate(cols), np.concatenate(lengths))
        n_comp, comp = connected_components(graph, directed=False)
    return _tree(graph)
