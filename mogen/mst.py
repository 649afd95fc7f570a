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
from scipy.sparse import coo_matrix, csr_matrix
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


def knn_graph(x: np.ndarray, k: int = DEFAULT_K, nn: tuple | None = None):
    """The kNN graph of ``x`` [n, 3] as a sparse matrix, each edge stored once (csr, lengths).

    Edge (i, j) is in the graph when j is among i's ``k`` nearest neighbours or i among j's.
    A pair that both lists hold is kept in the lower row only: csgraph would read both copies,
    and Kruskal's sort (most of an MST's cost) would sort twice as many edges.
    """
    dist, idx = _knn(x, k) if nn is None else nn
    n, k = dist.shape
    # j's list holds i for sure when |ij| is below j's k-th neighbour distance (ties stay twice:
    # a duplicate edge is harmless, a lost one is not).
    twice = dist < dist[idx, -1]
    keep = ~twice | (np.arange(n)[:, None] < idx)
    count = keep.sum(1)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(count, out=indptr[1:])
    # csgraph treats a stored 0 as "no edge"; duplicate points are 1e-12 apart instead.
    return csr_matrix((np.maximum(dist[keep], 1e-12), idx[keep], indptr), shape=(n, n))


def knn_mst(x: np.ndarray, k: int = DEFAULT_K, nn: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MST (spanning forest) of the kNN graph of ``x`` [n, 3]: ``(rows, cols, lengths)``.

    ``nn`` may pass a precomputed ``(dist [n, k], idx [n, k])`` query (self excluded).
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    tree = minimum_spanning_tree(knn_graph(x, k, nn), overwrite=True)
    rows = np.repeat(np.arange(len(x)), np.diff(tree.indptr))
    return rows, tree.indices.astype(np.int64), tree.data


def knn_mst_degrees(x: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """Degree of every point [n] in the MST (spanning forest) of the kNN graph of ``x`` [n, 3].

    Examples
    --------
    >>> knn_mst_degrees(np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0], [10, 0, 0]]), k=2).tolist()
    [1, 2, 2, 1]
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return np.zeros(len(x), np.int64)
    tree = minimum_spanning_tree(knn_graph(x, k), overwrite=True)
    return np.diff(tree.indptr) + np.bincount(tree.indices, minlength=len(x))


def _join(comp: np.ndarray, n_comp: int, target: np.ndarray) -> tuple[int, np.ndarray]:
    """Components after joining each component ``c`` to component ``target[c]``: ``(count, labels)``.

    Each component points at one other, so the joins form trees whose roots are pairs that
    point at each other (or, among tied lengths, longer cycles); pointer jumping finds the
    roots in log steps, and a cycle it cannot settle goes to scipy.
    """
    parent = target.copy()
    c = np.arange(n_comp)
    mutual = parent[parent] == c
    parent[mutual & (c < parent)] = c[mutual & (c < parent)]  # the lower of a pair is the root
    for _ in range(64):
        up = parent[parent]
        if np.array_equal(up, parent):
            break
        parent = up
    if not np.array_equal(parent[parent], parent):  # a cycle (only among tied lengths): let scipy settle it
        graph = coo_matrix((np.ones(n_comp), (c, target)), shape=(n_comp, n_comp))
        count, labels = connected_components(graph, directed=False)
        return count, labels[comp]
    roots = parent == c
    label = np.cumsum(roots) - 1
    return int(roots.sum()), label[parent][comp]


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
    live = np.arange(n)  # points whose list still reaches outside their component (once all inside, always)
    d_out, j_out = np.full(n, np.inf), np.full(n, -1)
    while n_comp > 1:
        outside = comp[idx[live]] != comp[live, None]
        has = outside.any(1)
        first = np.argmax(outside, 1)
        d_out[:], j_out[:] = np.inf, -1
        d_out[live] = np.where(has, dist[live, first], np.inf)
        j_out[live] = np.where(has, idx[live, first], -1)
        live = live[has]
        best = np.full(n_comp, np.inf)
        np.minimum.at(best, comp, d_out)
        # exact search only where the k-NN list cannot tell and the point could still win
        need = np.isinf(d_out) & (reach < best[comp])
        if need.any():
            for c in np.unique(comp[need]):
                inside = np.flatnonzero(need & (comp == c))
                others = np.flatnonzero(comp != c)
                d, j = cKDTree(x[others]).query(x[inside])
                d_out[inside], j_out[inside] = d, others[j]
            best[:] = np.inf
            np.minimum.at(best, comp, d_out)
        # per component its shortest edge; among equals the lowest point index
        winners = np.flatnonzero(d_out == best[comp])
        firsts = np.full(n_comp, n)
        np.minimum.at(firsts, comp[winners], winners)
        rows.append(firsts)
        cols.append(j_out[firsts])
        lengths.append(d_out[firsts])
        # Every component's shortest outgoing edge is an MST edge (cut property); the new
        # components are the old ones joined by these edges.
        n_comp, comp = _join(comp, n_comp, comp[j_out[firsts]])
    # With ties two chosen edges could close a cycle: the tree is the MST of the chosen edges.
    return _tree(_graph(n, np.concatenate(rows), np.concatenate(cols), np.concatenate(lengths)))
