"""The condition vector MoGen conditions its generator on.

Per fragment (in unit-ball coordinates):

======== ===== ===============================================================
group    dims  meaning
======== ===== ===============================================================
type     4     one-hot neurite type: unknown, soma, axon, dendrite
centroid 3     mean point
cov      6     covariance of the points: xx, yy, zz, xy, xz, yz
leaves   1     leaf count of the point cloud's Euclidean MST, as log1p(n)/log(1+N)
======== ===== ===============================================================

Centroid and covariance follow rotations, so they are computed on the fly from the
(possibly augmented) points; type and MST leaf count are rotation invariant and stored
with the dataset.

Examples
--------
>>> import torch
>>> pts = torch.randn(2, 256, 3) * 0.3
>>> cond = condition_vector(pts, torch.tensor([2, 3]), torch.tensor([40, 55]))
>>> cond.shape
torch.Size([2, 14])
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mogen.mst import knn_mst

NEURITE_TYPES = ("unknown", "soma", "axon", "dendrite")
COND_GROUPS = {
    "type": slice(0, 4),
    "centroid": slice(4, 7),
    "cov": slice(7, 13),
    "leaves": slice(13, 14),
}
COND_DIM = 14


def neurite_type_index(name: str) -> int:
    """Map a neurite type name to its integer code (see ``NEURITE_TYPES``)."""
    try:
        return NEURITE_TYPES.index(name)
    except ValueError:
        raise ValueError(f"unknown neurite type {name!r}; expected one of {NEURITE_TYPES}") from None


def mst_edges(points: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean minimum spanning tree of a cloud, approximated on its kNN graph.

    Returns ``(edges [E, 2], lengths [E])``. With k=8 the kNN graph of a surface
    sample almost always contains the exact MST; if it is disconnected the result is a
    spanning forest (:func:`mogen.mst.knn_mst`; separate pieces each keep their own leaves).
    """
    rows, cols, lengths = knn_mst(points, k)
    return np.stack([rows, cols], 1), lengths


def mst_leaf_count(points: np.ndarray, k: int = 8) -> int:
    """Number of degree-1 nodes in the cloud's Euclidean MST."""
    edges, _ = mst_edges(points, k)
    deg = np.bincount(edges.ravel(), minlength=len(points))
    return int((deg == 1).sum())


def condition_vector(
    points: torch.Tensor, neurite_type: torch.Tensor, mst_leaves: torch.Tensor
) -> torch.Tensor:
    """Build the [..., 14] condition vector from points [..., N, 3]."""
    n = points.shape[-2]
    centroid = points.mean(-2)
    d = points - centroid.unsqueeze(-2)
    c = d.transpose(-1, -2) @ d / n
    cov = torch.stack(
        [c[..., 0, 0], c[..., 1, 1], c[..., 2, 2], c[..., 0, 1], c[..., 0, 2], c[..., 1, 2]], -1
    )
    onehot = torch.nn.functional.one_hot(neurite_type.long(), len(NEURITE_TYPES)).to(points.dtype)
    leaves = torch.log1p(mst_leaves.to(points.dtype)).unsqueeze(-1) / math.log1p(n)
    return torch.cat([onehot, centroid, cov, leaves], -1)
