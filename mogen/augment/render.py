"""Neurons and fragments → voxel label volumes, packed so that they touch as in neuropil.

Volumes are indexed ``[z, y, x]`` (the order gunpowder and PyTorch Connectomics use); points are
``[..., 3]`` xyz in µm. A ``Grid`` ties the two together: voxel ``[k, j, i]`` covers
``origin + (i, j, k) * voxel`` to one voxel further, in xyz µm.

* ``points_to_solid``: surface points → closed solid. Points are voxelised and closed with a
  ball of ``closing_um`` (which also fills tubes thinner than that, open ends included, so crops
  cut at the ball's edge become solid); enclosed cavities are filled between the closing's
  dilation and erosion.
* ``skeleton_to_solid``: a skeleton's tubes, exactly: a voxel is inside when its distance to the
  nearest densely resampled skeleton point is at most that point's radius (one Euclidean
  distance transform).
* ``pack_labels``: several solids in one volume; where they overlap, each voxel goes to the
  object it lies deepest inside, so neighbours touch along a shared face and keep distinct ids.

Examples
--------
>>> import numpy as np
>>> grid = Grid.around(np.zeros(3), extent_um=4.0, voxel_nm=(100, 100, 100))
>>> grid.shape
(40, 40, 40)
>>> nodes = np.array([[-2.0, 0, 0], [2.0, 0, 0]]); parents = np.array([-1, 0]); radii = np.array([0.5, 0.5])
>>> solid = skeleton_to_solid(nodes, parents, radii, grid)
>>> bool(solid.any())
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Grid:
    """A voxel grid: ``origin_um`` (xyz of the low corner), ``voxel_um`` (z, y, x), ``shape`` (z, y, x)."""

    origin_um: tuple[float, float, float]
    voxel_um: tuple[float, float, float]
    shape: tuple[int, int, int]

    @classmethod
    def around(cls, centre_um: np.ndarray, extent_um: float | tuple[float, float, float], voxel_nm: tuple[float, float, float]) -> "Grid":
        """A grid of ``extent_um`` (one number or z, y, x) centred on ``centre_um`` (xyz)."""
        voxel = tuple(float(v) / 1000.0 for v in voxel_nm)
        if min(voxel) <= 0:
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

    def centres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel-centre coordinates along z, y, x (µm)."""
        o = self.origin_um
        return tuple(o[2 - a] + (np.arange(self.shape[a]) + 0.5) * self.voxel_um[a] for a in range(3))


def fill_slice_holes(solid: np.ndarray) -> np.ndarray:
    """``solid`` with the holes of its 2-D slices along z, y and x filled.

    A tube cut open is a closed ring in the slices across it, so its lumen is filled even
    where the tube is open at its ends (3-D hole filling leaks out there).
    """
    out = solid.copy()
    for axis in range(3):
        structure = np.zeros((3, 3, 3), bool)
        plane = [slice(None)] * 3
        plane[axis] = 1
        structure[tuple(plane)] = ndimage.generate_binary_structure(2, 1)
        out |= ndimage.binary_fill_holes(solid, structure)
    return out


def points_to_solid(points_um: np.ndarray, grid: Grid, closing_um: float | None = None,
                    open_tubes: bool = False) -> np.ndarray:
    """Closed solid [z, y, x] bool from surface points.

    ``open_tubes`` also fills tubes thicker than the closing that are cut open (the ends of a
    crop or of a grown neurite) by filling holes slice by slice (:func:`fill_slice_holes`).

    ``closing_um`` defaults to the median distance from a point to its 8th nearest neighbour
    (at least 2 voxels): enough to seal a sparsely sampled surface (a 2,048-point fragment has
    points ~0.2 µm apart on neurites of ~0.2 µm radius) and to fill tubes of that radius.
    """
    pts = np.asarray(points_um, float)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must be [n, 3] xyz µm, got shape {pts.shape}")
    if closing_um is None:
        from scipy.spatial import cKDTree

        k = min(8, len(pts) - 1)
        d = cKDTree(pts).query(pts, k=k + 1)[0][:, k] if k > 0 else np.zeros(1)
        closing_um = max(float(np.median(d)), 2.0 * max(grid.voxel_um))
    solid = np.zeros(grid.shape, bool)
    ijk, inside = grid.index(pts)
    if not inside.any():
        return solid
    ijk = ijk[inside]
    # work in the object's bounding box (plus a margin for the closing) to keep it cheap
    pad = np.array([int(np.ceil(closing_um / v)) + 2 for v in grid.voxel_um])
    lo = np.maximum(ijk.min(0) - pad, 0)
    hi = np.minimum(ijk.max(0) + pad + 1, grid.shape)
    sub = np.zeros(hi - lo, bool)
    sub[tuple((ijk - lo).T)] = True
    # pad so the closing does not erode at the box edge, then crop back
    padded = np.pad(sub, [(p, p) for p in pad])
    # closing by distance transforms (dilate: within r of a point; erode: more than r from
    # outside), fast for any radius; holes are filled while the shell is thick, since a thin
    # sampled shell has pinholes that fill_holes would leak through
    thick = ndimage.distance_transform_edt(~padded, sampling=grid.voxel_um) <= closing_um
    thick = ndimage.binary_fill_holes(thick)
    if open_tubes:
        thick = fill_slice_holes(thick)
    closed = (ndimage.distance_transform_edt(thick, sampling=grid.voxel_um) > closing_um)[
        pad[0] : pad[0] + sub.shape[0], pad[1] : pad[1] + sub.shape[1], pad[2] : pad[2] + sub.shape[2]]
    solid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = closed
    return solid


def skeleton_to_solid(nodes_um: np.ndarray, parents: np.ndarray, radii_um: np.ndarray, grid: Grid) -> np.ndarray:
    """Solid [z, y, x] bool of a skeleton's tubes (radius per node, interpolated along edges)."""
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
    hi = np.array(grid.origin_um) + np.array(grid.shape[::-1]) * grid.voxel_xyz + rmax
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


def pack_labels(solids: list[np.ndarray], voxel_um: tuple[float, float, float], first_label: int = 1) -> np.ndarray:
    """One uint32 label volume from overlapping solids; overlaps go to the object a voxel is deepest in.

    Object ``k`` gets label ``first_label + k``; an object left with no voxels is absent.
    """
    if not solids:
        raise ValueError("nothing to pack")
    labels = np.zeros(solids[0].shape, np.uint32)
    depth = np.zeros(solids[0].shape, np.float32)
    for k, solid in enumerate(solids):
        if solid.shape != labels.shape:
            raise ValueError(f"solid {k} has shape {solid.shape}, expected {labels.shape}")
        if not solid.any():
            continue
        d = ndimage.distance_transform_edt(solid, sampling=voxel_um).astype(np.float32)
        win = d > depth
        labels[win] = first_label + k
        depth[win] = d[win]
    return labels


def touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of distinct non-zero labels that share a voxel face."""
    pairs = set()
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)
        lo, hi = a[:-1].ravel(), a[1:].ravel()
        m = (lo != hi) & (lo > 0) & (hi > 0)
        for x, y in zip(lo[m], hi[m]):
            pairs.add((int(min(x, y)), int(max(x, y))))
    return pairs


def pack_fragments(fragments_um: list[np.ndarray], voxel_nm: tuple[float, float, float] = (80, 40, 40),
                   extent_um: float = 8.0, spread_um: float = 1.5, seed: int = 0,
                   closing_um: float | None = None) -> tuple[np.ndarray, Grid, np.ndarray]:
    """Render fragments (surface points in µm, each centred on its anchor) into one touching volume.

    Fragment ``k`` is moved so its anchor lies within ``spread_um`` of the volume centre (a
    random offset, seeded) and gets label ``k + 1``. Returns ``(labels, grid, offsets_um)``.
    """
    rng = np.random.default_rng(seed)
    grid = Grid.around(np.zeros(3), extent_um, voxel_nm)
    offsets = rng.uniform(-spread_um, spread_um, size=(len(fragments_um), 3))
    solids = [points_to_solid(np.asarray(f, float) + o, grid, closing_um) for f, o in zip(fragments_um, offsets)]
    return pack_labels(solids, grid.voxel_um), grid, offsets
