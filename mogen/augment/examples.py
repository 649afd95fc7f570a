"""Merge candidates cut from a rendered, over-segmented volume: what an agglomeration step decides.

A *candidate* is a pair of supervoxels that share voxel faces. Agglomeration must join it when
both pieces belong to one object (a *true* contact) and keep it apart when they belong to two
(a *false* contact: joining it would merge two neurons).

The classifier sees each candidate as a point cloud: the surface of the two pieces together
(voxels of either piece with a face neighbour that is in neither), within ``view_um`` of the
contact, each point drawn uniformly inside its surface voxel, recentred on the contact and
scaled to the unit ball. Training examples and test candidates are cut by this one function
from volumes rendered by the one renderer, so real, generated and control objects differ only
in their shapes.

The controls' deformations live here too: :func:`jitter` and :func:`elastic_deform` turn real
fragments into control objects.

Examples
--------
>>> import numpy as np
>>> from mogen.augment.render import Grid
>>> grid = Grid.around(np.zeros(3), (1.0, 1.0, 4.0), (100, 100, 100))
>>> labels = np.zeros(grid.shape, np.uint32); labels[3:7, 3:7, :] = 1  # one rod along x
>>> sv = labels.copy(); sv[..., 20:] = 2 * labels[..., 20:]             # cut in two
>>> cand = find_candidates(sv, labels, grid)
>>> cand.edges.tolist(), cand.same.tolist(), np.round(cand.contact_um, 2).tolist()
([[1, 2]], [True], [[0.0, 0.0, 0.0]])
>>> views = ViewCutter(sv, grid).views(cand.edges, cand.contact_um, view_um=1.0, n_points=64, seed=0)
>>> views.shape, bool(np.abs(views).max() <= 1.0)
((1, 64, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mogen.augment.render import Grid, face_contacts


@dataclass
class Candidates:
    """Merge candidates of one volume.

    ``edges`` [E, 2] supervoxel ids (low first), ``faces`` [E] shared voxel faces,
    ``contact_um`` [E, 3] xyz centre of the shared faces, ``objects`` [E, 2] ground-truth object
    labels of the two pieces.
    """

    edges: np.ndarray
    faces: np.ndarray
    contact_um: np.ndarray
    objects: np.ndarray

    def __len__(self) -> int:
        return len(self.edges)

    @property
    def same(self) -> np.ndarray:
        """True where both pieces belong to one object (a join an agglomeration should make)."""
        return self.objects[:, 0] == self.objects[:, 1]

    @property
    def false_fraction(self) -> float:
        """Share of candidates that would merge two objects."""
        return float((~self.same).mean()) if len(self) else float("nan")


def supervoxel_objects(supervoxels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Ground-truth object of every supervoxel id, as an array indexed by id (0 for background).

    Raises ``ValueError`` when a supervoxel covers two objects (supervoxels must be pure).
    """
    sv, lab = supervoxels.ravel(), labels.ravel()
    out = np.zeros(int(sv.max()) + 1, np.int64)
    out[sv] = lab
    if not np.array_equal(out[sv], lab):
        raise ValueError("a supervoxel covers more than one ground-truth object")
    return out


def find_candidates(supervoxels: np.ndarray, labels: np.ndarray, grid: Grid, min_faces: int = 1) -> Candidates:
    """Every pair of supervoxels sharing at least ``min_faces`` voxel faces."""
    pairs, faces, centre = face_contacts(supervoxels)
    keep = faces >= min_faces
    pairs, faces, centre = pairs[keep], faces[keep], centre[keep]
    obj = supervoxel_objects(supervoxels, labels)
    return Candidates(pairs, faces, grid.to_um(centre), obj[pairs])


class ViewCutter:
    """Surface voxels of every supervoxel, grouped by supervoxel, for cutting candidate views.

    A voxel at the volume's edge is not a surface voxel because of the edge (the object goes
    on beyond it).
    """

    def __init__(self, supervoxels: np.ndarray, grid: Grid):
        self.grid = grid
        padded = np.pad(supervoxels, 1, mode="edge")
        core = padded[1:-1, 1:-1, 1:-1]
        shifted = [padded[tuple(slice(1 + d[a], padded.shape[a] - 1 + d[a]) for a in range(3))]
                   for d in ((-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1))]
        edge = (core > 0) & np.any([s != core for s in shifted], axis=0)
        where = np.argwhere(edge)
        own = core[edge].astype(np.int64)
        order = np.argsort(own, kind="stable")
        self.ijk = where[order]
        self.own = own[order]
        self.neighbours = np.stack([s[edge] for s in shifted], 1)[order].astype(np.int64)
        self.start = np.searchsorted(self.own, np.arange(int(supervoxels.max()) + 2))

    def rows(self, sv: int) -> np.ndarray:
        return np.arange(self.start[sv], self.start[sv + 1])

    def surface(self, a: int, b: int) -> np.ndarray:
        """Voxel indices [m, 3] of the surface of supervoxels ``a`` ∪ ``b``."""
        rows = np.r_[self.rows(a), self.rows(b)]
        nb = self.neighbours[rows]
        outer = np.any((nb != a) & (nb != b), axis=1)
        return self.ijk[rows[outer]]

    def views(self, edges: np.ndarray, contact_um: np.ndarray, view_um: float, n_points: int, seed: int = 0) -> np.ndarray:
        """Unit-ball views [E, n_points, 3] float32 of each candidate (see the module docstring)."""
        rng = np.random.default_rng(seed)
        out = np.zeros((len(edges), n_points, 3), np.float32)
        vox = self.grid.voxel_xyz
        for e, ((a, b), c) in enumerate(zip(edges, contact_um)):
            ijk = self.surface(int(a), int(b))
            pts = self.grid.to_um(ijk) + (rng.random((len(ijk), 3)) - 0.5) * vox - c
            pts = pts[np.einsum("ij,ij->i", pts, pts) <= view_um**2]
            if len(pts):
                out[e] = pts[rng.choice(len(pts), n_points, replace=len(pts) < n_points)] / view_um
        return out


# ----------------------------------------------------------------------------- control objects
def jitter(fragments: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Copies of fragments [F, N, 3] with Gaussian noise of ``sigma`` (same units) on every point."""
    rng = np.random.default_rng(seed)
    frags = np.asarray(fragments, dtype=np.float64)
    return (frags + rng.normal(scale=sigma, size=frags.shape)).astype(np.float32)


def elastic_deform(fragments: np.ndarray, seed: int = 0, jitter: float = 0.005, strength: float = 0.06,
                   width: float = 0.35, n_centres: int = 6, scale: float = 0.1) -> np.ndarray:
    """Jittered, elastically deformed copies of unit-ball fragments (the augmentation control).

    Each fragment gets a random anisotropic scaling (±``scale``), a smooth displacement field
    (a sum of ``n_centres`` Gaussian bumps of ``width`` with amplitude ``strength``) and
    per-point Gaussian jitter of ``jitter``.

    Examples
    --------
    >>> f = np.random.default_rng(0).normal(scale=0.3, size=(2, 100, 3))
    >>> d = elastic_deform(f, seed=0)
    >>> d.shape, bool(0 < np.abs(d - f).mean() < 0.1)
    ((2, 100, 3), True)
    """
    rng = np.random.default_rng(seed)
    frags = np.asarray(fragments, dtype=np.float64)
    out = np.empty_like(frags)
    for f, pts in enumerate(frags):
        pts = pts * rng.uniform(1 - scale, 1 + scale, size=3)
        centres = rng.uniform(-1, 1, size=(n_centres, 3))
        amps = rng.normal(scale=strength, size=(n_centres, 3))
        w = np.exp(-((pts[:, None, :] - centres[None]) ** 2).sum(-1) / (2 * width**2))
        out[f] = pts + w @ amps + rng.normal(scale=jitter, size=pts.shape)
    return out.astype(np.float32)
