"""The condition vector MoGen conditions its generator on.

Per fragment (in unit-ball coordinates):

======== ===== ===============================================================
group    dims  meaning
======== ===== ===============================================================
type     4     one-hot neurite type: unknown, soma, axon, dendrite
centroid 3     mean point
cov      6     covariance of the points: xx, yy, zz, xy, xz, yz
ends     1     cable ends in the crop (skeleton tips inside the ball + crossings of its
               sphere: 1 a tip, 2 a neurite passing through, 3+ branches), ``log1p(n) / log 9``
caliber  1     tube radius at the anchor, in unit-ball units r/R, as ``log10(r/R) + 2``
======== ===== ===============================================================

Centroid and covariance follow rotations, so they are computed on the fly from the
(possibly augmented) points; type, ends and caliber are rotation invariant and stored with
the dataset (:func:`mogen.data.fragments.crop_topology` reads them off the skeleton). Ends
replaced the leaf count of the cloud's MST, which on 2,048 surface points measured surface
roughness (every real fragment had 450-510 leaves), not branching.

Examples
--------
>>> import torch
>>> pts = torch.randn(2, 256, 3) * 0.3
>>> cond = condition_vector(pts, torch.tensor([2, 3]), torch.tensor([2, 3]), torch.tensor([0.03, 0.05]))
>>> cond.shape
torch.Size([2, 15])
>>> ends_from_value(cond[:, COND_GROUPS["ends"]]).round().tolist()
[[2.0], [3.0]]
>>> [round(float(c), 3) for c in caliber_from_value(cond[:, COND_GROUPS["caliber"]])]
[0.03, 0.05]
>>> centroid, cov = moments(cond)
>>> bool(torch.allclose(centroid, pts.mean(1))), cov.shape
(True, torch.Size([2, 3, 3]))
"""

from __future__ import annotations

import math

import torch


NEURITE_TYPES = ("unknown", "soma", "axon", "dendrite")
COND_GROUPS = {
    "type": slice(0, 4),
    "centroid": slice(4, 7),
    "cov": slice(7, 13),
    "ends": slice(13, 14),
    "caliber": slice(14, 15),
}
COND_DIM = 15


def neurite_type_index(name: str) -> int:
    """Map a neurite type name to its integer code (see ``NEURITE_TYPES``)."""
    try:
        return NEURITE_TYPES.index(name)
    except ValueError:
        raise ValueError(f"unknown neurite type {name!r}; expected one of {NEURITE_TYPES}") from None


COND_GROUP_NAMES = tuple(COND_GROUPS)


def group_index(name: str) -> int:
    """Column of condition group ``name`` in a condition mask [B, groups]."""
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
    """Centroid [..., 3] and covariance [..., 3, 3] stored in condition vectors [..., 15]."""
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


def ends_value(ends) -> torch.Tensor:
    """The ends entry: ``log1p(ends) / log 9`` (8 ends -> 1)."""
    return torch.log1p(torch.as_tensor(ends).float()) / math.log(9.0)


def ends_from_value(value: torch.Tensor) -> torch.Tensor:
    return torch.expm1(value * math.log(9.0))


def caliber_value(caliber) -> torch.Tensor:
    """The caliber entry from a tube radius in unit-ball units (r/R): ``log10(r/R) + 2``."""
    return torch.log10(torch.as_tensor(caliber).float().clamp(min=1e-4)) + 2.0


def caliber_from_value(value: torch.Tensor) -> torch.Tensor:
    return 10.0 ** (value - 2.0)


def condition_vector(points: torch.Tensor, neurite_type: torch.Tensor, cable_ends: torch.Tensor,
                     caliber: torch.Tensor) -> torch.Tensor:
    """Build the [..., 15] condition vector from points [..., N, 3] and the stored per-fragment values."""
    centroid, cov = cloud_moments(points)
    onehot = torch.nn.functional.one_hot(neurite_type.long(), len(NEURITE_TYPES)).to(points.dtype)
    ends = ends_value(cable_ends).to(points.dtype).unsqueeze(-1)
    cal = caliber_value(caliber).to(points.dtype).unsqueeze(-1)
    return torch.cat([onehot, centroid, cov_to_vec(cov), ends, cal], -1)
