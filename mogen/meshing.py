"""Watertight surface meshes of surface point clouds (µm), block by block.

The solid is the one :func:`mogen.augment.render.points_to_solid` makes (points voxelised and
closed with a ball of ``closing_um``), joined with the skeleton's tubes at ``core`` times their
radius (:func:`mogen.augment.render.skeleton_to_solid`): the closing alone fills tubes thinner
than ``closing_um`` but leaves thicker ones hollow where they are cut open (a neurite grown to
a length budget ends in open cuts), and the skeleton's core fills them. The solid's boundary is
extracted with marching cubes (:func:`skimage.measure.marching_cubes`) and smoothed (Taubin,
which keeps the volume and the topology).

A whole neurite spans hundreds of µm at 0.1 µm voxels, too many voxels for one array, so space
is cut into cubic blocks of ``block`` voxels and only blocks near the cloud are computed, each
with a halo wide enough for the closing. Marching cubes then runs per block on the block plus
the first plane of its upper neighbours (read from their solids, so both sides see the same
voxels); every cube is meshed once and vertices on shared planes coincide, so merging them
gives a closed surface.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> t, a = rng.uniform(-4, 4, 4000), rng.uniform(0, 2 * np.pi, 4000)
>>> rod = np.stack([t, 0.5 * np.cos(a), 0.5 * np.sin(a)], 1)   # a rod open at both ends
>>> mesh = watertight_mesh(rod, voxel_um=0.1, block=32)
>>> bool(mesh.is_watertight), len(mesh.split()), round(float(mesh.volume) / (np.pi * 0.5**2 * 8), 1)  # ends retract
(True, 1, 0.9)
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from mogen.augment.render import Grid, points_to_solid, skeleton_to_solid

DEFAULT_BLOCK = 96
BLUR_VOXELS = 0.7  # Gaussian sigma of the field marching cubes reads
# The voxels holding surface points lie half a voxel outside the surface on average; on the
# blurred field, level Phi(0.5 / BLUR_VOXELS) = 0.76 puts the mesh half a voxel inside their boundary.
LEVEL = 0.76


def default_closing(points_um: np.ndarray, voxel_um: float) -> float:
    """As :func:`points_to_solid`: the median distance to the 8th neighbour, at least 2 voxels."""
    k = min(8, len(points_um) - 1)
    d = cKDTree(points_um).query(points_um, k=k + 1)[0][:, k] if k > 0 else np.zeros(1)
    return max(float(np.median(d)), 2.0 * voxel_um)


def default_voxel(points_um: np.ndarray, skeleton=None) -> float:
    """A third of the median skeleton radius (thin neurites need fine voxels), in [0.03, 0.25] µm."""
    if skeleton is None:
        from mogen.skeleton import skeletonize

        skeleton = skeletonize(points_um)
    return float(np.clip(np.median(skeleton.radii) / 3.0, 0.03, 0.25))


def _along_edges(nodes: np.ndarray, parents: np.ndarray, step: float) -> np.ndarray:
    """Nodes plus points every ``step`` along each edge (long edges cross blocks holding no node)."""
    out = [nodes]
    for c in np.flatnonzero(parents >= 0):
        n = int(np.ceil(np.linalg.norm(nodes[parents[c]] - nodes[c]) / step))
        if n > 1:
            out.append(nodes[c] + np.linspace(0, 1, n + 1)[1:-1, None] * (nodes[parents[c]] - nodes[c]))
    return np.concatenate(out)


def solid_blocks(points_um: np.ndarray, voxel_um: float, block: int = DEFAULT_BLOCK, closing_um: float | None = None,
                 skeleton=None, core: float = 0.7) -> tuple[dict, np.ndarray]:
    """The solid, blurred, per block: ``({(i, j, k): uint8 [block]^3 (z, y, x), 0..255}, origin_um)``.

    Block ``(i, j, k)`` (x, y, z block indices) covers ``origin + (i, j, k) * block * voxel``;
    only blocks holding solid voxels are returned.
    """
    pts = np.asarray(points_um, float)
    closing = default_closing(pts, voxel_um) if closing_um is None else float(closing_um)
    tube_pts = tube_parents = tube_r = None
    reach = closing
    if skeleton is not None and len(skeleton) > 1:
        # at least 1.5 voxels: thinner tubes vanish in the blurred field
        tube_pts, tube_parents, tube_r = skeleton.nodes, skeleton.parents, np.maximum(core * skeleton.radii, 1.5 * voxel_um)
        reach = max(reach, float(tube_r.max()))
    halo = int(np.ceil(2 * closing / voxel_um)) + 3
    origin = pts.min(0) - reach - 2 * voxel_um
    size = block * voxel_um
    # blocks whose core can hold solid: within `reach` of a point or of a skeleton node
    near = [pts] if tube_pts is None else [pts, _along_edges(tube_pts, tube_parents, size / 2)]
    wanted = set()
    for cloud in near:
        for off in itertools.product((-1, 1), repeat=3):
            wanted.update(map(tuple, np.floor((cloud + np.array(off) * (reach + voxel_um) - origin) / size).astype(int)))
    tree = cKDTree(pts)
    blocks = {}
    for key in sorted(wanted):
        lo = origin + np.array(key) * size
        grid = Grid(tuple(lo - halo * voxel_um), (voxel_um,) * 3, (block + 2 * halo,) * 3)
        centre, half = lo + size / 2, (block / 2 + halo) * voxel_um
        inside = tree.query_ball_point(centre, half * np.sqrt(3))
        sub = pts[inside]
        sub = sub[np.all(np.abs(sub - centre) <= half, axis=1)]
        # a closing: the renderer's erosion also removes the edge voxel itself, hence one voxel less
        solid = (points_to_solid(sub, grid, dilate_um=closing, erode_um=max(closing - voxel_um, 0.0)) if len(sub)
                 else np.zeros(grid.shape, bool))
        if tube_pts is not None:
            solid |= skeleton_to_solid(tube_pts, tube_parents, tube_r, grid)
        if not solid[halo:-halo, halo:-halo, halo:-halo].any():
            continue
        # a blurred field: marching cubes on raw 0/1 voxels makes non-manifold edges where voxels touch diagonally
        field = ndimage.gaussian_filter(solid.astype(np.float32), BLUR_VOXELS)[halo:-halo, halo:-halo, halo:-halo]
        blocks[key] = np.round(field * 255).astype(np.uint8)
    return blocks, origin


def blocks_to_mesh(blocks: dict, origin: np.ndarray, voxel_um: float, block: int):
    """Marching cubes over the blocks (see module docstring) -> one merged :class:`trimesh.Trimesh`."""
    import trimesh
    from skimage.measure import marching_cubes

    todo = {tuple(np.subtract(k, off)) for k in blocks for off in itertools.product((0, 1), repeat=3)}
    verts, faces, count = [], [], 0
    for key in sorted(todo):
        # this block's voxels plus the first plane of its upper neighbours (absent blocks are empty)
        sub = np.zeros((block + 1,) * 3, np.uint8)
        for dz, dy, dx in itertools.product((0, 1), repeat=3):
            nb = blocks.get((key[0] + dx, key[1] + dy, key[2] + dz))
            if nb is None:
                continue
            zs, ys, xs = (slice(0, block) if d == 0 else slice(block, block + 1) for d in (dz, dy, dx))
            sub[zs, ys, xs] = nb[: block if dz == 0 else 1, : block if dy == 0 else 1, : block if dx == 0 else 1]
        if sub.max() <= LEVEL * 255 or sub.min() > LEVEL * 255:
            continue
        v, f, _, _ = marching_cubes(sub.astype(np.float32), level=LEVEL * 255, method="lewiner", allow_degenerate=False)
        # voxel (z, y, x) index -> xyz µm at the voxel centre
        base = np.array(key[::-1]) * block
        v = origin[::-1] + (base + v + 0.5) * voxel_um
        verts.append(v[:, ::-1])
        faces.append(f + count)
        count += len(v)
    if not verts:
        return trimesh.Trimesh()
    mesh = trimesh.Trimesh(np.concatenate(verts), np.concatenate(faces), process=False)
    mesh.merge_vertices(digits_vertex=6)
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    return mesh


def watertight_mesh(points_um: np.ndarray, voxel_um: float | None = None, closing_um: float | None = None,
                    skeleton=None, block: int = DEFAULT_BLOCK, smooth: int = 10, core: float = 0.7):
    """A closed triangle mesh (µm) around a surface cloud; see the module docstring.

    Parameters
    ----------
    points_um : [n, 3] surface points.
    voxel_um : voxel edge (default :func:`default_voxel`).
    closing_um : closing radius (default :func:`default_closing`).
    skeleton : a :class:`mogen.skeleton.Skeleton` whose tubes (``core`` x radius) fill the
        lumen; default: :func:`mogen.skeleton.skeletonize` of the cloud. Pass ``False`` for none.
    smooth : Taubin smoothing iterations (0: the raw voxel staircase).
    """
    import trimesh

    pts = np.asarray(points_um, float)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 4:
        raise ValueError(f"need surface points [n >= 4, 3] in µm, got shape {pts.shape}")
    if skeleton is None:
        from mogen.skeleton import skeletonize

        skeleton = skeletonize(pts)
    voxel = default_voxel(pts, skeleton or None) if voxel_um is None else float(voxel_um)
    blocks, origin = solid_blocks(pts, voxel, block, closing_um, skeleton or None, core)
    mesh = blocks_to_mesh(blocks, origin, voxel, block)
    if smooth and len(mesh.faces):
        trimesh.smoothing.filter_taubin(mesh, iterations=smooth)
    return mesh
