"""Neuron morphometrics of point-cloud fragments: skeletonise, measure, compare.

A fragment is a sample of a neurite's surface. Its skeleton is the graph of
:func:`mogen.skeleton.skeleton_graph` (nodes pulled onto the axis by mean shift on a
``voxel_um`` grid, Euclidean MST, terminal branches shorter than ``prune_um`` pruned; the
steps and their limits are described in :mod:`mogen.skeleton`), all in µm (give
``radius_um`` for unit-ball clouds).

Per fragment (``MORPH_NAMES``):

- ``cable_um``: total skeleton length.
- ``branch_points``: nodes of degree >= 3.
- ``leaves``: nodes of degree 1.
- ``caliber_um``: mean distance of the cloud's points to the skeleton (edges resampled at
  ``voxel_um / 4``): the neurite's radius for a tube surface.
- ``tortuosity``: length-weighted mean, over unbranched segments (between leaves and branch
  points) at least ``prune_um`` long, of path length / end-to-end distance (1 = straight).

Distributions of a generated and a reference set are compared per morphometric with the
Wasserstein-1 distance (in the morphometric's unit) and the two-sample Kolmogorov-Smirnov
statistic (:func:`compare_morphometrics`).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> t = rng.uniform(-9, 9, 2048)
>>> a = rng.uniform(0, 2 * np.pi, 2048)
>>> tube = np.stack([t, 0.4 * np.cos(a), 0.4 * np.sin(a)], 1)   # straight 18 µm rod, radius 0.4
>>> m = dict(zip(MORPH_NAMES, morphometrics(tube[None])[0]))
>>> [round(float(m[k]), 1) for k in MORPH_NAMES]   # the skeleton's ends retract ~2 µm each
[14.3, 0.0, 2.0, 0.5, 1.0]
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import ks_2samp, wasserstein_distance
from tqdm.auto import tqdm

from mogen.metrics.features import as_clouds
from mogen.metrics.parallel import map_chunks, split
from mogen.skeleton import path_length, segments, skeleton_graph

MORPH_NAMES = ("cable_um", "branch_points", "leaves", "caliber_um", "tortuosity")


def _unit_grids(counts: np.ndarray) -> np.ndarray:
    """``np.concatenate([np.linspace(0, 1, c) for c in counts])`` bit for bit, in one pass (c >= 2).

    >>> c = np.array([2, 5, 3])
    >>> bool((_unit_grids(c) == np.concatenate([np.linspace(0, 1, k) for k in c])).all())
    True
    """
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    index = np.arange(total) - np.repeat(first, counts)  # position within each grid
    step = 1.0 / np.repeat(counts - 1, counts)  # linspace: step = (stop - start) / (num - 1)
    t = index * step
    t[first + counts - 1] = 1.0  # linspace sets the end point exactly
    return t


def _measure(x: np.ndarray, voxel: float, prune: float) -> np.ndarray:
    nodes, adj = skeleton_graph(x, voxel, prune)
    if not adj:  # a single blob: no cable
        return np.array([0.0, 0.0, 0.0, float(np.linalg.norm(x - x.mean(0), axis=1).mean()), 1.0])
    deg = np.array([len(nb) for nb in adj.values()])
    edges = [(i, j) for i, nb in adj.items() for j in nb if i < j]
    cable = sum(adj[i][j] for i, j in edges)
    # caliber: distance of points to the skeleton, edges resampled finely
    step = voxel / 4
    ends = np.array(edges)
    counts = np.maximum(2, np.ceil(np.array([adj[i][j] for i, j in edges]) / step).astype(np.int64) + 1)
    t = _unit_grids(counts)[:, None]
    start, delta = np.repeat(nodes[ends[:, 0]], counts, 0), np.repeat(nodes[ends[:, 1]] - nodes[ends[:, 0]], counts, 0)
    samples = np.concatenate([nodes[list(adj)], start + t * delta])
    caliber = cKDTree(samples).query(x)[0].mean()
    lengths, ratios = [], []
    for path in segments(adj):
        length = path_length(nodes, path)
        chord = np.linalg.norm(nodes[path[-1]] - nodes[path[0]])
        if length >= prune and chord > 0:
            lengths.append(length)
            ratios.append(length / chord)
    tortuosity = float(np.average(ratios, weights=lengths)) if ratios else 1.0
    return np.array([cable, float((deg >= 3).sum()), float((deg == 1).sum()), caliber, tortuosity])


def _measure_chunk(args) -> np.ndarray:
    clouds, voxel, prune = args
    return np.stack([_measure(x, voxel, prune) for x in clouds])


def morphometrics(
    points, radius_um: float = 1.0, voxel_um: float = 1.0, prune_um: float = 2.0, progress: bool = False,
    workers: int = 1,
) -> np.ndarray:
    """Morphometrics [n, 5] (columns ``MORPH_NAMES``) of clouds [n, N, 3].

    Parameters
    ----------
    points : clouds in unit-ball coordinates with ``radius_um`` (or in µm with the default 1).
    voxel_um, prune_um : skeletonisation scales (see module docstring).
    workers : processes skeletonising clouds in parallel (:mod:`mogen.metrics.parallel`;
        the result does not depend on it).
    """
    clouds = as_clouds(points) * radius_um
    if workers > 1 and len(clouds) > 1:
        parts = split(len(clouds), 4 * workers)  # several chunks per worker: skeletons vary in cost
        done = map_chunks(_measure_chunk, [(clouds[r], voxel_um, prune_um) for r in parts], workers)
        return np.concatenate(done)
    it = tqdm(clouds, desc="morphometrics", unit="cloud", disable=not progress, leave=False)
    return np.stack([_measure(x, voxel_um, prune_um) for x in it])


def compare_morphometrics(generated: np.ndarray, reference: np.ndarray) -> dict:
    """Per morphometric: Wasserstein-1 (in its unit), KS statistic and p-value, means.

    Returns ``{name: {"W1", "KS", "KS_p", "mean_generated", "mean_reference"}}``.
    """
    out = {}
    for k, name in enumerate(MORPH_NAMES):
        g, r = generated[:, k], reference[:, k]
        ks = ks_2samp(g, r)
        out[name] = {
            "W1": float(wasserstein_distance(g, r)),
            "KS": float(ks.statistic),
            "KS_p": float(ks.pvalue),
            "mean_generated": float(g.mean()),
            "mean_reference": float(r.mean()),
        }
    return out
