"""Whole-neurite morphometrics: Sholl profiles, branch orders, segment lengths, tortuosity, caliber.

Neurites are :class:`mogen.skeleton.Skeleton` trees (µm, rooted where growth started). Per
neurite, :func:`neurite_metrics` returns per-segment values from navis's ``segment_analysis``
(length, tortuosity, mean radius, Strahler index), each segment's centrifugal branch order
(branch points between it and the root), the Sholl profile around the root (:func:`_sholl`)
and whole-neurite scalars. :func:`compare_sets` compares two sets of
neurites per distribution with the Wasserstein-1 distance and the KS statistic, as
:func:`mogen.metrics.morphometrics.compare_morphometrics` does for fragments.

Real neurons are cut to a comparable piece with :func:`cut_piece` (the cable within a growing
path distance of a start node, as ``mogen grow`` grows outwards from its seed), and pass
through the same surface -> skeleton route as generated ones (:func:`resurface`), so
skeletonisation artefacts do not count against the generator.

Examples
--------
>>> import numpy as np
>>> from mogen.skeleton import Skeleton
>>> nodes = np.array([[0.0, 0, 0], [10, 0, 0], [20, 0, 0], [25, 8, 0], [25, -8, 0]])
>>> y = Skeleton(nodes, np.array([-1, 0, 1, 2, 2]), np.full(5, 0.5))
>>> m = neurite_metrics(y, sholl_step_um=5.0)
>>> sorted(np.round(m["segment_length_um"], 1).tolist()), sorted(m["branch_order"].tolist())
([9.4, 9.4, 20.0], [0, 1, 1])
>>> m["sholl"][:5].tolist()   # intersections at 5, 10, 15, 20, 25 µm from the root
[1, 1, 1, 1, 2]
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.stats import ks_2samp, wasserstein_distance

from mogen.skeleton import Skeleton

DISTRIBUTIONS = {
    "sholl_radius_um": "Sholl: distance from the root of each intersection",
    "branch_order": "centrifugal branch order per segment",
    "segment_length_um": "segment length (between branch points and ends)",
    "tortuosity": "segment path length / end-to-end distance (segments >= 2 µm)",
    "caliber_um": "segment mean radius",
    "strahler": "Strahler index per segment",
}
SCALARS = ("cable_um", "branch_points_per_100um", "leaves", "max_sholl", "extent_um")


def _segments(sk: Skeleton) -> list[np.ndarray]:
    """Unbranched node paths (root/branch point -> next branch point or leaf), root side first."""
    deg = sk.degree
    children = [[] for _ in range(len(sk))]
    for c in np.flatnonzero(sk.parents >= 0):
        children[sk.parents[c]].append(c)
    out, stack = [], [(0, c) for c in children[0]] if len(sk) else []
    while stack:
        start, cur = stack.pop()
        path = [start, cur]
        while len(children[cur]) == 1 and deg[cur] == 2:
            cur = children[cur][0]
            path.append(cur)
        out.append(np.array(path))
        stack.extend((cur, c) for c in children[cur])
    return out


def neurite_metrics(sk: Skeleton, sholl_step_um: float = 5.0, sholl_max_um: float = 400.0,
                    min_tortuosity_um: float = 2.0) -> dict:
    """Distributions (arrays) and scalars of one neurite; see the module docstring."""
    import navis

    tn = sk.to_navis()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = navis.segment_analysis(tn)
        dist = np.linalg.norm(sk.nodes - sk.nodes[0], axis=1)
        radii = np.arange(sholl_step_um, min(sholl_max_um, float(dist.max()) + sholl_step_um) + 1e-9, sholl_step_um)
    sholl = _sholl(sk, radii)
    lengths = seg.length.to_numpy(float)
    long = lengths >= min_tortuosity_um
    # centrifugal order of a segment: branch points between it and the root (navis has Strahler, not this)
    is_branch = sk.degree >= 3
    node_order = np.zeros(len(sk), np.int64)
    for i in range(1, len(sk)):  # parents come first
        p = sk.parents[i]
        node_order[i] = node_order[p] + int(is_branch[p] and p != 0)
    order = [int(node_order[path[1]]) for path in _segments(sk)]
    return {
        "segment_length_um": lengths, "tortuosity": seg.tortuosity.to_numpy(float)[long],
        "caliber_um": seg.radius_mean.to_numpy(float), "strahler": seg.strahler_index.to_numpy(float),
        "branch_order": np.array(order, np.int64), "sholl": sholl, "sholl_radii_um": radii,
        "sholl_radius_um": np.repeat(radii, sholl),
        "cable_um": sk.cable_um, "branch_points_per_100um": 100.0 * sk.n_branch_points / max(sk.cable_um, 1e-9),
        "leaves": sk.n_leaves, "max_sholl": int(sholl.max()) if len(sholl) else 0, "extent_um": float(dist.max()),
    }


def _sholl(sk: Skeleton, radii: np.ndarray) -> np.ndarray:
    """Edges crossing each sphere around the root, in either direction. (navis 1.12's
    ``sholl_analysis`` counts only edges whose child is inside and parent outside, which around
    the root of a tree, where parents are always nearer, is zero.)"""
    child = np.flatnonzero(sk.parents >= 0)
    d = np.linalg.norm(sk.nodes - sk.nodes[0], axis=1)
    a, b = d[child], d[sk.parents[child]]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.array([int(((lo < r) & (hi >= r)).sum()) for r in radii], np.int64)


def cut_piece(nodes: np.ndarray, parents: np.ndarray, radii: np.ndarray, start: int, length_um: float) -> Skeleton:
    """The part of a tree within a path distance of node ``start`` that holds ``length_um`` of cable,
    rooted at ``start`` (edges are taken in order of their distance from it)."""
    n = len(nodes)
    child = np.flatnonzero(parents >= 0)
    w = np.linalg.norm(nodes[child] - nodes[parents[child]], axis=1)
    g = coo_matrix((np.maximum(w, 1e-9), (child, parents[child])), shape=(n, n)).tocsr()
    dist = dijkstra(g, directed=False, indices=start)
    # an edge's far end decides when it is reached; keep edges until the cable is used up
    far = np.maximum(dist[child], dist[parents[child]])
    order = np.argsort(far)
    order = order[np.isfinite(far[order])]  # other pieces of a fragmented skeleton are out of reach
    keep_edges = order[np.cumsum(w[order]) <= length_um]
    keep = np.zeros(n, bool)
    keep[start] = True
    keep[child[keep_edges]] = keep[parents[child[keep_edges]]] = True
    idx = np.flatnonzero(keep)
    new = np.full(n, -1)
    new[idx] = np.arange(len(idx))
    sub_edges = np.stack([new[child[keep_edges]], new[parents[child[keep_edges]]]], 1)
    from mogen.skeleton import orient

    return orient(nodes[idx], sub_edges, radii[idx], root=int(new[start]))


def resurface(sk: Skeleton, density_per_um2: float, rng: np.random.Generator, voxel_um: float | None = None) -> Skeleton:
    """``sk``'s tube surface sampled at ``density_per_um2`` and skeletonised again (the route
    generated neurites take), rooted at the same place."""
    from mogen.data.surface import TubeSurface
    from mogen.skeleton import EXPORT_VOXEL_UM, skeletonize

    child = np.flatnonzero(sk.parents >= 0)
    surf = TubeSurface(sk.nodes[sk.parents[child]], sk.nodes[child], sk.radii[sk.parents[child]], sk.radii[child])
    pts = surf.sample(max(64, int(surf.area * density_per_um2)), rng)
    return skeletonize(pts, EXPORT_VOXEL_UM if voxel_um is None else voxel_um, root=sk.nodes[0])


def pooled(metrics: list[dict], name: str) -> np.ndarray:
    return np.concatenate([np.asarray(m[name], float) for m in metrics]) if metrics else np.zeros(0)


def compare_sets(a: list[dict], b: list[dict]) -> dict:
    """Per distribution and scalar: W1 (in its unit), KS statistic, means of set ``a`` and ``b``."""
    out = {}
    for name in (*DISTRIBUTIONS, *SCALARS):
        x = pooled(a, name) if name in DISTRIBUTIONS else np.array([m[name] for m in a], float)
        y = pooled(b, name) if name in DISTRIBUTIONS else np.array([m[name] for m in b], float)
        if len(x) == 0 or len(y) == 0:
            out[name] = {"W1": float("nan"), "KS": float("nan"), "mean_a": float("nan"), "mean_b": float("nan"),
                         "n_a": len(x), "n_b": len(y)}
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ks = ks_2samp(x, y)
        out[name] = {"W1": float(wasserstein_distance(x, y)), "KS": float(ks.statistic), "mean_a": float(x.mean()),
                     "mean_b": float(y.mean()), "n_a": len(x), "n_b": len(y)}
    return out
