"""Objects (surface point clouds) → solids → one label volume, packed densely as in neuropil.

Volumes are indexed ``[z, y, x]`` (the order gunpowder and PyTorch Connectomics use); points are
``[..., 3]`` xyz in µm. A ``Grid`` ties the two together: voxel ``[k, j, i]`` covers
``origin + (i, j, k) * voxel`` to one voxel further, in xyz µm.

Every object of the reconstruction benchmark — a real fragment, a generated one, a control —
is a surface point cloud and goes through the one renderer, :func:`points_to_solid`:

1. dilate: every voxel within ``dilate_um`` of a point (bridges the gaps of a sparse sample);
2. fill: background enclosed within a section along z, y or x becomes inside — a thick
   neurite's hollow shell, even where the crop cut it open, is closed in the sections across it;
3. erode: voxels within ``erode_um`` of the outside are removed again.

With ``erode_um < dilate_um`` the solid is ``dilate − erode`` fatter than the sampled surface,
which keeps sparsely sampled thin neurites connected. Defaults are calibrated on 2,048-point,
R = 10 µm crops of the open SWC skeletons against their exact tubes (:func:`skeleton_to_solid`):
median IoU 0.75 at 100 nm voxels (``tests/test_augment_render.py`` keeps it above 0.6).

:func:`pack_objects` places objects at random rotations and positions in a block, rejecting a
position where too much of the object would lie inside objects already there, and
:func:`pack_labels` turns the solids into labels: where solids still overlap, a voxel goes to
the object it lies deepest in, so neighbours touch along a shared face and keep distinct ids.

Examples
--------
>>> import numpy as np
>>> grid = Grid.around(np.zeros(3), extent_um=4.0, voxel_nm=(100, 100, 100))
>>> grid.shape
(40, 40, 40)
>>> nodes = np.array([[-2.0, 0, 0], [2.0, 0, 0]]); parents = np.array([-1, 0]); radii = np.array([0.5, 0.5])
>>> solid = skeleton_to_solid(nodes, parents, radii, grid)
>>> ring = np.c_[np.linspace(-2, 2, 400), 0.5 * np.cos(np.arange(400)), 0.5 * np.sin(np.arange(400))]
>>> rendered = points_to_solid(ring, grid)
>>> bool(rendered[20, 20, 20]), round(float((rendered & solid).sum() / (rendered | solid).sum()), 1) >= 0.6
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# calibrated against exact skeleton tubes (see the module docstring)
DILATE_UM = 0.7
ERODE_UM = 0.55


@dataclass(frozen=True)
class Grid:
    """A voxel grid: ``origin_um`` (xyz of the low corner), ``voxel_um`` (z, y, x), ``shape`` (z, y, x)."""

    origin_um: tuple[float, float, float]
    voxel_um: tuple[float, float, float]
    shape: tuple[int, int, int]

    @classmethod
    def around(cls, centre_um: np.ndarray, extent_um: float | tuple[float, float, float], voxel_nm: tuple[float, float, float]) -> "Grid":
        """A grid of ``extent_um`` (one number or z, y, x) centred on ``centre_um`` (xyz)."""
        voxel = tuple(float(v) / 1000.0 for v in np.broadcast_to(np.asarray(voxel_nm, float), 3))
        if not min(voxel) > 0:
            raise ValueError(f"voxel size must be positive, got {voxel_nm} nm")
        ext = np.broadcast_to(np.asarray(extent_um, float), 3)
        shape = tuple(int(max(1, round(e / v))) for e, v in zip(ext, voxel))
        size_xyz = np.array([shape[2] * voxel[2], shape[1] * voxel[1], shape[0] * voxel[0]])
        origin = np.asarray(centre_um, float) - size_xyz / 2
        return cls(tuple(map(float, origin)), voxel, shape)

    @property
    def voxel_xyz(self) -> np.ndarray:
        return np.array(self.voxel_um[::-1])

    @property
    def size_xyz(self) -> np.ndarray:
        """Edge lengths (µm) along x, y, z."""
        return np.array(self.shape[::-1]) * self.voxel_xyz

    @property
    def centre_um(self) -> np.ndarray:
        return np.array(self.origin_um) + self.size_xyz / 2

    @property
    def offset_nm(self) -> tuple[float, float, float]:
        """Low corner in nm, z y x (gunpowder's ``offset``)."""
        return tuple(float(v) * 1000.0 for v in self.origin_um[::-1])

    @property
    def voxel_nm(self) -> tuple[float, float, float]:
        return tuple(float(v) * 1000.0 for v in self.voxel_um)

    def index(self, points_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Voxel indices [n, 3] (z, y, x) of points and a mask of those inside the grid."""
        ijk = np.floor((np.asarray(points_um) - np.array(self.origin_um)) / self.voxel_xyz).astype(np.int64)[:, ::-1]
        inside = np.all((ijk >= 0) & (ijk < np.array(self.shape)), axis=1)
        return ijk, inside

    def to_um(self, ijk: np.ndarray) -> np.ndarray:
        """xyz µm of (fractional) voxel indices [n, 3] (z, y, x); integer indices give voxel centres."""
        return np.array(self.origin_um) + (np.asarray(ijk, float)[:, ::-1] + 0.5) * self.voxel_xyz

    def centres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates along z, y, x (µm)."""
        o = self.origin_um
        return tuple(o[2 - a] + (np.arange(self.shape[a]) + 0.5) * self.voxel_um[a] for a in range(3))


# ----------------------------------------------------------------------------- one object
def ball_offsets(radius_um: float, voxel_um) -> np.ndarray:
    """Integer voxel offsets [m, 3] (z, y, x) whose physical length is at most ``radius_um``."""
    voxel = np.asarray(voxel_um, float)
    r = [int(np.floor(radius_um / v)) for v in voxel]
    g = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in r], indexing="ij"), -1).reshape(-1, 3)
    return g[((g * voxel) ** 2).sum(1) <= radius_um**2 + 1e-9]


def _stamp(flat: np.ndarray, centres: np.ndarray, offsets: np.ndarray, value: bool, chunk: int = 4096) -> None:
    """Set ``flat[c + o]`` for every centre and offset (flat indices; the caller keeps them in range)."""
    for s in range(0, len(centres), chunk):
        flat[(centres[s : s + chunk, None] + offsets[None]).ravel()] = value


def _flat(offsets: np.ndarray, shape) -> np.ndarray:
    return offsets @ np.array([shape[1] * shape[2], shape[2], 1])


_SECTION = {}


def _section_structure(axis: int) -> np.ndarray:
    """4-connectivity within the sections perpendicular to ``axis``, none across them."""
    if axis not in _SECTION:
        s = np.zeros((3, 3, 3), bool)
        index = [slice(None)] * 3
        index[axis] = 1
        s[tuple(index)] = ndimage.generate_binary_structure(2, 1)
        _SECTION[axis] = s
    return _SECTION[axis]


def fill_sections(mask: np.ndarray) -> np.ndarray:
    """``mask`` plus the background that is enclosed within a section along any of the three axes.

    A neurite cut open by its crop is a tube open at both ends, so 3D hole filling leaves it
    hollow; in the sections across it, its wall is a closed ring.
    """
    out = mask.copy()
    for axis in range(3):
        lab, n = ndimage.label(~mask, structure=_section_structure(axis))
        outside = np.zeros(n + 1, bool)
        for a in range(3):
            if a != axis:
                outside[np.take(lab, 0, axis=a)] = True
                outside[np.take(lab, -1, axis=a)] = True
        out |= ~outside[lab]
    return out


def interior(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` whose six face neighbours are all in it (outside the array counts as in)."""
    inner = mask.copy()
    for axis in range(3):
        a, m = np.moveaxis(inner, axis, 0), np.moveaxis(mask, axis, 0)
        a[1:] &= m[:-1]
        a[:-1] &= m[1:]
    return inner


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Voxels whose label differs from a face neighbour's (object-object and object-background)."""
    edge = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)
        e = np.moveaxis(edge, axis, 0)
        diff = a[1:] != a[:-1]
        e[1:] |= diff
        e[:-1] |= diff
    return edge


def points_to_solid(points_um: np.ndarray, grid: Grid, dilate_um: float = DILATE_UM, erode_um: float = ERODE_UM) -> np.ndarray:
    """Solid [z, y, x] bool of the object whose surface ``points_um`` [n, 3] sample (see module doc).

    Points outside the grid (by more than the dilation) do not contribute; the work is done in
    the points' bounding box.
    """
    pts = np.asarray(points_um, float)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must be [n, 3] xyz µm, got shape {pts.shape}")
    if not (dilate_um > 0 and 0 <= erode_um):
        raise ValueError(f"dilate_um must be > 0 and erode_um >= 0, got {dilate_um}, {erode_um}")
    voxel = np.asarray(grid.voxel_um)
    solid = np.zeros(grid.shape, bool)
    ijk, _ = grid.index(pts)
    reach = np.ceil(dilate_um / voxel).astype(int)
    pad = reach + np.ceil(erode_um / voxel).astype(int) + 2
    near = np.all((ijk >= -reach) & (ijk < np.array(grid.shape) + reach), axis=1)
    if not near.any():
        return solid
    ijk = ijk[near]
    lo, hi = ijk.min(0) - pad, ijk.max(0) + pad + 1
    shape = tuple(hi - lo)
    box = np.zeros(shape, bool)
    centres = np.unique(np.ravel_multi_index((ijk - lo).T, shape))
    _stamp(box.reshape(-1), centres, _flat(ball_offsets(dilate_um, voxel), shape), True)
    box = fill_sections(box)
    if erode_um > 0:
        edge = np.flatnonzero((box & ~interior(box)).reshape(-1))
        out = box.copy()
        _stamp(out.reshape(-1), edge, _flat(ball_offsets(erode_um, voxel), shape), False)
        box = out
    glo, ghi = np.maximum(lo, 0), np.minimum(hi, grid.shape)
    if np.any(ghi <= glo):
        return solid
    solid[glo[0] : ghi[0], glo[1] : ghi[1], glo[2] : ghi[2]] = box[
        glo[0] - lo[0] : ghi[0] - lo[0], glo[1] - lo[1] : ghi[1] - lo[1], glo[2] - lo[2] : ghi[2] - lo[2]]
    return solid


def skeleton_to_solid(nodes_um: np.ndarray, parents: np.ndarray, radii_um: np.ndarray, grid: Grid) -> np.ndarray:
    """Solid [z, y, x] bool of a skeleton's tubes (radius per node, interpolated along edges), exactly:
    a voxel is inside when its distance to the nearest densely resampled skeleton point is at
    most that point's radius (one Euclidean distance transform)."""
    nodes, parents, radii = np.asarray(nodes_um, float), np.asarray(parents), np.asarray(radii_um, float)
    step = min(grid.voxel_um) / 2
    child = np.flatnonzero(parents >= 0)
    samples, rad = [nodes], [radii]
    for c in child:
        p = parents[c]
        n = int(np.ceil(np.linalg.norm(nodes[p] - nodes[c]) / step))
        if n > 1:
            t = np.linspace(0, 1, n + 1)[1:-1, None]
            samples.append(nodes[c] + t * (nodes[p] - nodes[c]))
            rad.append(radii[c] + t[:, 0] * (radii[p] - radii[c]))
    pts, rad = np.concatenate(samples), np.concatenate(rad)
    rmax = float(rad.max()) if len(rad) else 0.0
    # keep skeleton points whose tube can reach the grid
    lo = np.array(grid.origin_um) - rmax
    hi = np.array(grid.origin_um) + grid.size_xyz + rmax
    keep = np.all((pts >= lo) & (pts <= hi), axis=1)
    pts, rad = pts[keep], rad[keep]
    solid = np.zeros(grid.shape, bool)
    if len(pts) == 0:
        return solid
    # a padded grid so skeleton points just outside still claim the voxels they reach
    pad = [int(np.ceil(rmax / v)) + 1 for v in grid.voxel_um]
    big = Grid(tuple(np.array(grid.origin_um) - np.array(pad[::-1]) * grid.voxel_xyz), grid.voxel_um,
               tuple(s + 2 * p for s, p in zip(grid.shape, pad)))
    ijk, inside = big.index(pts)
    radius_at = np.full(big.shape, -1.0)
    # several skeleton points per voxel: keep the largest radius
    order = np.argsort(rad[inside])
    sel = ijk[inside][order]
    radius_at[tuple(sel.T)] = rad[inside][order]
    dist, idx = ndimage.distance_transform_edt(radius_at < 0, sampling=grid.voxel_um, return_indices=True)
    reach = radius_at[tuple(idx)]
    inside_tube = dist <= reach
    return inside_tube[pad[0] : pad[0] + grid.shape[0], pad[1] : pad[1] + grid.shape[1], pad[2] : pad[2] + grid.shape[2]]


# ----------------------------------------------------------------------------- many objects
def pack_labels(solids: list[np.ndarray], voxel_um, first_label: int = 1) -> np.ndarray:
    """One uint32 label volume from solids; a voxel where solids overlap goes to the object whose
    own (unshared) voxels are nearest, so the overlap is split down its middle and the two
    objects touch along a shared face.

    Object ``k`` gets label ``first_label + k``; an object left with no voxels is absent.
    """
    if not solids:
        raise ValueError("nothing to pack")
    shape = solids[0].shape
    labels = np.zeros(shape, np.uint32)
    count = np.zeros(shape, np.uint8)
    for k, solid in enumerate(solids):
        if solid.shape != shape:
            raise ValueError(f"solid {k} has shape {solid.shape}, expected {shape}")
        labels[solid] = first_label + k
        count += solid
    overlap = count > 1
    if not overlap.any():
        return labels
    own = np.where(count == 1, labels, 0)
    _, nearest = ndimage.distance_transform_edt(own == 0, sampling=voxel_um, return_indices=True)
    idx = np.argwhere(overlap)
    claim = own[tuple(nearest[:, idx[:, 0], idx[:, 1], idx[:, 2]])].astype(np.int64)
    # the nearest own voxel may belong to an object that does not cover this voxel (or there is
    # none): then the voxel keeps the last covering object
    valid = claim > 0
    covers = np.zeros(len(idx), bool)
    for k in np.unique(claim[valid]):
        sel = np.flatnonzero(claim == k)
        covers[sel] = solids[k - first_label][tuple(idx[sel].T)]
    labels[tuple(idx[covers].T)] = claim[covers]
    return labels


def face_contacts(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of distinct non-zero ids that share voxel faces.

    Returns ``(pairs [E, 2] (low id first), faces [E] (shared faces), centre [E, 3] (mean
    position of the shared faces, fractional z, y, x voxel index))``, pairs sorted.
    """
    keys, where = [], []
    for axis in range(3):
        a = np.moveaxis(volume, axis, 0)
        lo, hi = a[:-1], a[1:]
        m = (lo != hi) & (lo > 0) & (hi > 0)
        if not m.any():
            continue
        moved = np.argwhere(m).astype(np.float64)  # axes: [axis] + the other two in order
        pos = np.empty_like(moved)
        pos[:, axis] = moved[:, 0] + 0.5  # the face between voxel i and i + 1
        pos[:, [d for d in range(3) if d != axis]] = moved[:, 1:]
        x, y = lo[m].astype(np.int64), hi[m].astype(np.int64)
        keys.append(np.stack([np.minimum(x, y), np.maximum(x, y)], 1))
        where.append(pos)
    if not keys:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    keys, where = np.concatenate(keys), np.concatenate(where)
    pairs, inverse, faces = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    centre = np.stack([np.bincount(inverse, where[:, d], len(pairs)) for d in range(3)], 1) / faces[:, None]
    return pairs, faces, centre


@dataclass
class Placement:
    """Where an object goes: points ``p`` (µm, around the object's centre) land at ``p @ rotation.T + offset_um``."""

    rotation: np.ndarray  # [3, 3]
    offset_um: np.ndarray  # [3] xyz

    def apply(self, points_um: np.ndarray) -> np.ndarray:
        return np.asarray(points_um, float) @ self.rotation.T + self.offset_um

    def to_json(self) -> dict:
        return dict(rotation=np.round(self.rotation, 6).tolist(), offset_um=np.round(self.offset_um, 4).tolist())


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniform random rotation matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def pack_objects(objects_um: list[np.ndarray], grid: Grid, rng: np.random.Generator, max_overlap: float = 0.1,
                 tries: int = 20, dilate_um: float = DILATE_UM, erode_um: float = ERODE_UM,
                 ) -> tuple[list[Placement | None], list[np.ndarray | None]]:
    """Place objects (surface points in µm around their centre) one by one in ``grid``.

    Each object gets a uniform random rotation and a centre uniform in the block; a placement is
    rejected when more than ``max_overlap`` of the object's points that fall in the block lie
    inside objects already placed, or when none falls in it (at most ``tries`` draws, then the
    object is left out: ``None``). Returns the placements and the rendered solids.
    """
    occupied = np.zeros(grid.shape, bool)
    placements, solids = [], []
    lo, size = np.array(grid.origin_um), grid.size_xyz
    for obj in objects_um:
        chosen = None
        for _ in range(tries):
            p = Placement(random_rotation(rng), lo + rng.random(3) * size)
            ijk, inside = grid.index(p.apply(obj))
            if inside.sum() < 0.05 * len(obj):
                continue
            if occupied[tuple(ijk[inside].T)].mean() <= max_overlap:
                chosen = p
                break
        if chosen is None:
            placements.append(None)
            solids.append(None)
            continue
        solid = points_to_solid(chosen.apply(obj), grid, dilate_um, erode_um)
        occupied |= solid
        placements.append(chosen)
        solids.append(solid)
    return placements, solids
