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
>>> centroid, cov = moments(cond)
>>> bool(torch.allclose(centroid, pts.mean(1))), cov.shape
(True, torch.Size([2, 3, 3]))
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mogen.mst import knn_mst, knn_mst_degrees

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
    """Number of degree-1 nodes in the MST (spanning forest) of the cloud's kNN graph (see :func:`mst_edges`).

    Examples
    --------
    >>> mst_leaf_count(np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [2, 1, 0]]), k=2)
    2
    """
    return int((knn_mst_degrees(points, k) == 1).sum())


COND_GROUP_NAMES = tuple(COND_GROUPS)


def group_index(name: str) -> int:
    """Column of condition group ``name`` in a condition mask [B, 4]."""
    try:
        return COND_GROUP_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown condition group {name!r}; groups are {', '.join(COND_GROUP_NAMES)}") from None


def cov_to_vec(c: torch.Tensor) -> torch.Tensor:
    """Symmetric matrices [..., 3, 3] -> their six entries [..., 6] (xx, yy, zz, xy, xz, yz)."""
    return torch.stack([c[..., 0, 0], c[..., 1, 1], c[..., 2, 2], c[..., 0, 1], c[..., 0, 2], c[..., 1, 2]], -1)


def vec_to_cov(v: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`cov_to_vec`: [..., 6] -> [..., 3, 3]."""
    xx, yy, zz, xy, xz, yz = v.unbind(-1)
    return torch.stack([torch.stack(r, -1) for r in ((xx, xy, xz), (xy, yy, yz), (xz, yz, zz))], -2)


def moments(cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroid [..., 3] and covariance [..., 3, 3] stored in condition vectors [..., 14]."""
    return cond[..., COND_GROUPS["centroid"]], vec_to_cov(cond[..., COND_GROUPS["cov"]])


def with_moments(cond: torch.Tensor, centroid: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """A copy of ``cond`` with its centroid and covariance replaced (e.g. after a rotation)."""
    out = cond.clone()
    out[..., COND_GROUPS["centroid"]] = centroid.to(out.dtype)
    out[..., COND_GROUPS["cov"]] = cov_to_vec(cov).to(out.dtype)
    return out


def cloud_moments(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroid [..., 3] and covariance [..., 3, 3] (population) of clouds [..., N, 3]."""
    centroid = points.mean(-2)
    d = points - centroid.unsqueeze(-2)
    return centroid, d.transpose(-1, -2) @ d / points.shape[-2]


def leaves_value(mst_leaves: torch.Tensor, n_points: int) -> torch.Tensor:
    """The leaves entry: ``log1p(leaves) / log1p(N)``, in [0, 1]."""
    return torch.log1p(mst_leaves.float()) / math.log1p(n_points)


def condition_vector(
    points: torch.Tensor, neurite_type: torch.Tensor, mst_leaves: torch.Tensor
) -> torch.Tensor:
    """Build the [..., 14] condition vector from points [..., N, 3]."""
    centroid, cov = cloud_moments(points)
    onehot = torch.nn.functional.one_hot(neurite_type.long(), len(NEURITE_TYPES)).to(points.dtype)
    leaves = leaves_value(mst_leaves, points.shape[-2]).to(points.dtype).unsqueeze(-1)
    return torch.cat([onehot, centroid, cov_to_vec(cov), leaves], -1)
