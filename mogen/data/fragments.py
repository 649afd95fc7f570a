"""Fragments: crops of a neuron's surface in a ball of radius R around anchors on its cable.

Anchors are spread evenly along the cable: every path from a root gets one anchor each
``spacing`` µm of path length (random offset per neuron, so the seed decides where), so a
neuron yields about cable / spacing anchors. If there are more than ``max_fragments``, a
seeded random subset is used.

A crop is an exact uniform sample of (surface ∩ ball(anchor, R)): the primitives whose
bounding spheres reach the ball are drawn ∝ area, points outside the ball are rejected, and
this repeats until N points are in. Anchors whose ball holds less surface than
``min_area_frac · πR²`` (3.1 µm² at R = 10 µm; a stub or a skeleton node off the mesh) are
skipped. A neuron with less cable than one crop diameter (2R) is refused, and so is one whose
geometry would need absurd work or memory (:func:`check_workload`: coordinates beyond 10 m,
more than 10 million anchors or surface pieces, fragments over 4 GiB), before any of it is
allocated.

Fragments are stored in unit-ball coordinates: (points − anchor) / R.
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from mogen.errors import DataError
from .surface import MeshSurface, Surface, fill_radii, skeleton_geometry, skeleton_surface

DEFAULT_RADIUS_UM = 10.0
DEFAULT_POINTS = 2048
DEFAULT_SPACING_UM = 5.0
DEFAULT_MAX_FRAGMENTS = 500
DEFAULT_MIN_AREA_FRAC = 0.01
# Beyond these a neuron is wrong (units, offsets) or the settings are: refuse before allocating.
MAX_COORD_UM = 1e7  # 10 m; float32 anchors keep 1 µm there
MAX_RADIUS_UM = 1e4  # a node radius of 1 cm
MAX_ANCHORS = 10_000_000
MAX_PRIMITIVES = 10_000_000  # tube pieces (~300 bytes each while built)
MAX_FRAGMENT_BYTES = 4 * 2**30


def neuron_rng(seed: int, neuron_id: str) -> np.random.Generator:
    """A generator that depends only on the seed and the neuron (not on file order)."""
    return np.random.default_rng([int(seed), zlib.crc32(str(neuron_id).encode())])


def path_length_from_root(xyz: np.ndarray, pidx: np.ndarray) -> np.ndarray:
    """Cable distance of every node from its tree's root (µm)."""
    n = len(xyz)
    child = np.nonzero(pidx >= 0)[0]
    roots = np.nonzero(pidx < 0)[0]
    w = np.linalg.norm(xyz[child] - xyz[pidx[child]], axis=1)
    # A virtual node n joins all roots, so one Dijkstra covers every tree; tiny weights
    # stand in for zero (sparse graphs drop explicit zeros).
    src = np.concatenate([pidx[child], np.full(len(roots), n)])
    dst = np.concatenate([child, roots])
    g = coo_matrix((np.concatenate([np.maximum(w, 1e-12), np.full(len(roots), 1e-12)]), (src, dst)), shape=(n + 1, n + 1))
    return dijkstra(g.tocsr(), directed=True, indices=n)[:n]


def anchors_along_cable(xyz: np.ndarray, pidx: np.ndarray, spacing: float, rng: np.random.Generator):
    """Points every ``spacing`` µm along every root path; returns ``(positions [A,3], nearest node [A])``.

    Examples
    --------
    >>> xyz = np.array([[0, 0, 0], [10, 0, 0], [20, 0, 0]], float)
    >>> pos, node = anchors_along_cable(xyz, np.array([-1, 0, 1]), 5.0, np.random.default_rng(0))
    >>> len(pos)
    4
    """
    d = path_length_from_root(xyz, pidx)
    child = np.nonzero(pidx >= 0)[0]
    par = pidx[child]
    lo, hi = d[par], d[child]
    offset = rng.uniform(0, spacing)
    kmin = np.floor((lo - offset) / spacing).astype(np.int64) + 1
    kmax = np.floor((hi - offset) / spacing).astype(np.int64)
    count = np.maximum(kmax - kmin + 1, 0)
    e = np.repeat(np.arange(len(child)), count)
    k = kmin[e] + np.arange(len(e)) - np.repeat(np.cumsum(count) - count, count)
    t = ((offset + k * spacing - lo[e]) / np.maximum(hi[e] - lo[e], 1e-12))[:, None]
    pos = xyz[par[e]] + t * (xyz[child[e]] - xyz[par[e]])
    nearest = np.where(t[:, 0] < 0.5, par[e], child[e])
    return pos, nearest


class Cropper:
    """Uniform samples of a surface inside balls of radius R (one KD-tree per neuron)."""

    def __init__(self, surface: Surface, radius: float):
        self.surface, self.radius = surface, float(radius)
        big = surface.bounds > self.radius  # few large primitives are checked directly
        self.big = np.nonzero(big)[0]
        self.small = np.nonzero(~big)[0]
        self.tree = cKDTree(surface.centers[self.small]) if len(self.small) else None
        self.reach = self.radius + (surface.bounds[self.small].max() if len(self.small) else 0.0)

    def candidates(self, anchor: np.ndarray) -> np.ndarray:
        """Primitives whose bounding sphere meets the ball."""
        parts = []
        if self.tree is not None:
            parts.append(self.small[np.asarray(self.tree.query_ball_point(anchor, self.reach), dtype=np.int64)])
        parts.append(self.big)
        c = np.concatenate(parts)
        s = self.surface
        near = np.linalg.norm(s.centers[c] - anchor, axis=1) - s.bounds[c] <= self.radius
        return c[near & (s.areas[c] > 0)]

    def crop(self, anchor: np.ndarray, n: int, rng: np.random.Generator, min_area: float = 0.0):
        """``n`` uniform points of surface ∩ ball(anchor, R), relative to the anchor (µm).

        Returns ``(points [n, 3], area estimate µm²)`` or ``(None, area)`` when the ball holds
        less than ``min_area`` of surface.
        """
        cand = self.candidates(anchor)
        if len(cand) == 0:
            return None, 0.0
        total = float(self.surface.areas[cand].sum())
        r2 = self.radius**2
        kept, got, tried = [], 0, 0
        m = int(1.5 * n) + 64
        for _ in range(200):
            pts = self.surface.sample(m, rng, subset=cand) - anchor
            inside = pts[np.einsum("ij,ij->i", pts, pts) <= r2]
            tried += m
            got += len(inside)
            kept.append(inside)
            if tried == m and total * got / tried < min_area:
                return None, total * got / tried
            if got >= n:
                break
            rate = max(got / tried, 1e-4)
            m = int(min((n - got) / rate * 1.2 + 64, 4_000_000))
        else:  # pragma: no cover - needs a surface with ~0 area inside the ball
            return None, total * got / max(tried, 1)
        return np.concatenate(kept)[:n], total * got / tried


def crop_fragments(surface: Surface, anchors: np.ndarray, radius: float, points: int, rng: np.random.Generator,
                   min_area: float = 0.0, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit-ball crops of ``surface`` around ``anchors`` (in order, until ``limit`` are made).

    Returns ``(fragments [F, points, 3] float32, anchor index [F])``; anchors whose ball holds
    less than ``min_area`` µm² of surface are skipped. Real neurons (:func:`make_fragments`)
    and the random-walk control (:mod:`mogen.augment.random_walk`) are cropped by this one function.
    """
    cropper = Cropper(surface, radius)
    out, used = [], []
    for i, anchor in enumerate(anchors):
        pts, _ = cropper.crop(anchor, points, rng, min_area)
        if pts is None:
            continue
        out.append((pts / radius).astype(np.float32))
        used.append(i)
        if limit and len(out) >= limit:
            break
    frags = np.stack(out) if out else np.zeros((0, points, 3), np.float32)
    return frags, np.asarray(used, dtype=np.int64)


def crop_topology(xyz: np.ndarray, pidx: np.ndarray, radius_um: np.ndarray, anchors: np.ndarray, crop: float,
                  soma: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What the skeleton says about each crop: cable ends inside the ball, and the caliber at its anchor.

    ``ends``: tips inside the ball (nodes of degree 1, soma nodes excepted) plus points where the
    cable crosses the crop sphere. A neurite passing through counts 2, a branch point inside 3,
    a terminal 1: the branchiness of the crop, which the network can be asked for.
    ``caliber``: the radius of the tube at the anchor (interpolated along its edge), µm.
    Returns ``(ends [A] int32, caliber_um [A] float32)``.

    Examples
    --------
    >>> xyz = np.array([[-20.0, 0, 0], [0, 0, 0], [20, 0, 0], [0, 5, 0]])   # a T: branch at the origin
    >>> ends, cal = crop_topology(xyz, np.array([-1, 0, 1, 1]), np.array([1.0, 0.5, 0.5, 0.3]),
    ...                           np.array([[0.0, 0, 0], [15, 0, 0]]), crop=10.0)
    >>> ends.tolist(), cal.round(2).tolist()   # 2 crossings + a tip; a crossing + a tip
    ([3, 2], [0.5, 0.5])
    """
    n = len(xyz)
    child = np.flatnonzero(pidx >= 0)
    par = pidx[child]
    degree = np.bincount(np.concatenate([child, par]), minlength=n)
    tip = degree <= 1
    if soma is not None:
        tip &= ~soma
    p0, d = xyz[par], xyz[child] - xyz[par]
    length = np.linalg.norm(d, axis=1)
    mid = p0 + d / 2
    edges_near = cKDTree(mid).query_ball_point(anchors, crop + (length.max() / 2 if len(length) else 0.0)) if len(child) else [[]] * len(anchors)
    nodes_near = cKDTree(xyz).query_ball_point(anchors, crop)
    ends = np.zeros(len(anchors), np.int32)
    caliber = np.zeros(len(anchors), np.float32)
    for a, (anchor, e, v) in enumerate(zip(anchors, edges_near, nodes_near)):
        v = np.asarray(v, dtype=np.int64)
        ends[a] = int(tip[v].sum())
        e = np.asarray(e, dtype=np.int64)
        if len(e):
            # |p0 + t d - anchor|^2 = crop^2: roots in [0, 1) are crossings of the sphere
            q = p0[e] - anchor
            A, B, C = (d[e] ** 2).sum(1), 2 * (d[e] * q).sum(1), (q**2).sum(1) - crop**2
            disc = B**2 - 4 * A * C
            ok = (disc > 0) & (A > 0)
            sq = np.sqrt(np.where(ok, disc, 0.0))
            for t in ((-B - sq) / (2 * np.maximum(A, 1e-300)), (-B + sq) / (2 * np.maximum(A, 1e-300))):
                ends[a] += int((ok & (t >= 0) & (t < 1)).sum())
            # caliber: the edge passing nearest the anchor, radius interpolated along it
            t = np.clip(-(d[e] * q).sum(1) / np.maximum(A, 1e-300), 0.0, 1.0)
            j = int(np.argmin(((q + t[:, None] * d[e]) ** 2).sum(1)))
            ce, pe = child[e[j]], par[e[j]]
            caliber[a] = (1 - t[j]) * radius_um[pe] + t[j] * radius_um[ce]
        elif len(v):
            caliber[a] = radius_um[v].mean()
    return ends, caliber


@dataclass
class Fragments:
    """Fragments of one neuron (F rows)."""

    points: np.ndarray  # float32 [F, N, 3], unit ball
    anchor_um: np.ndarray  # float32 [F, 3]
    neurite_type: np.ndarray  # int8 [F]
    cable_ends: np.ndarray  # int32 [F]: tips inside + sphere crossings of the skeleton (crop_topology)
    caliber: np.ndarray  # float32 [F]: tube radius at the anchor / R (unit-ball units)
    cable_um: float
    n_anchors: int
    n_skipped: int

    def __len__(self) -> int:
        return len(self.points)


def check_workload(source, xyz: np.ndarray, node_radius: np.ndarray, pidx: np.ndarray, cable: float, radius: float,
                   points: int, spacing: float, max_fragments: int | None, n_faces: int = 0) -> None:
    """Refuse a neuron whose geometry would need absurd work or memory, before it is allocated.

    Raises :class:`DataError` naming the neuron and the number (non-finite or huge coordinates,
    too many anchors, surface pieces or fragment bytes).

    Examples
    --------
    >>> xyz = np.array([[0, 0, 0], [1e12, 0, 0]])
    >>> check_workload("a.swc", xyz, np.ones(2), np.array([-1, 0]), 1e12, 10.0, 2048, 5.0, 500)
    Traceback (most recent call last):
    mogen.errors.DataError: a.swc: coordinates: x reaches 1e+12 µm (node 1); beyond 1e+07 µm (10 m) no neuron fits and float32 anchors lose precision: wrong --units or an offset?
    """
    bad = np.nonzero(~np.isfinite(xyz).all(1))[0]
    if len(bad):
        raise DataError(source, "coordinates", f"node {bad[0]} has a non-finite coordinate {xyz[bad[0]].tolist()}")
    if len(xyz):
        i, axis = np.unravel_index(np.argmax(np.abs(xyz)), xyz.shape)
        if abs(xyz[i, axis]) > MAX_COORD_UM:
            raise DataError(source, "coordinates", f"{'xyz'[axis]} reaches {xyz[i, axis]:.3g} µm (node {i}); beyond "
                            f"{MAX_COORD_UM:.0e} µm (10 m) no neuron fits and float32 anchors lose precision: wrong --units or an offset?")
    r = np.nan_to_num(node_radius, nan=0.0)
    if len(r) and r.max() > MAX_RADIUS_UM:
        i = int(np.argmax(r))
        raise DataError(source, "radius", f"node {i} has radius {r[i]:.3g} µm, more than {MAX_RADIUS_UM:.0e} µm: wrong --units?")
    anchors = cable / spacing
    if anchors > MAX_ANCHORS:
        raise DataError(source, "neuron", f"{cable:.3g} µm of cable / spacing {spacing:g} µm = {anchors:.3g} anchors, "
                        f"more than {MAX_ANCHORS:.0e}: use a larger --spacing-um (or check the units)")
    pieces = int((pidx >= 0).sum()) + cable / (radius / 2) + n_faces
    if pieces > MAX_PRIMITIVES:
        raise DataError(source, "neuron", f"{cable:.3g} µm of cable cut into pieces of R/2 = {radius / 2:g} µm gives "
                        f"{pieces:.3g} surface pieces, more than {MAX_PRIMITIVES:.0e}: check the units or use a larger --radius-um")
    frags = min(anchors + 1, max_fragments or np.inf)
    size = frags * points * 3 * 4
    if size > MAX_FRAGMENT_BYTES:
        raise DataError(source, "neuron", f"{frags:.3g} fragments of {points} points would take {size / 2**30:.3g} GiB "
                        f"(limit {MAX_FRAGMENT_BYTES / 2**30:g} GiB per neuron): lower --max-fragments-per-neuron or "
                        "--points, or raise --spacing-um")


def neuron_surface(neuron, radius: float) -> Surface:
    """The surface crops are taken from: the mesh if there is one, else the skeleton's tube."""
    if neuron.mesh is not None:
        return MeshSurface(neuron.mesh.vertices, neuron.mesh.faces)
    soma = neuron.soma_nodes if len(neuron.soma_nodes) else None
    return skeleton_surface(neuron.skeleton, max_length=radius / 2, soma_nodes=soma)


def make_fragments(
    neuron,
    radius: float = DEFAULT_RADIUS_UM,
    points: int = DEFAULT_POINTS,
    spacing: float = DEFAULT_SPACING_UM,
    max_fragments: int | None = DEFAULT_MAX_FRAGMENTS,
    seed: int = 0,
    min_area_frac: float = DEFAULT_MIN_AREA_FRAC,
) -> Fragments | list[Fragments]:
    """Cut a :class:`mogen.data.neuron.Neuron` (or a list of them) into fragments.

    Examples
    --------
    >>> from mogen.data.neuron import navis_examples
    >>> fr = make_fragments(navis_examples()[0], points=256, max_fragments=3)
    >>> fr.points.shape, bool((np.linalg.norm(fr.points, axis=-1) <= 1 + 1e-6).all())
    ((3, 256, 3), True)
    """
    if isinstance(neuron, (list, tuple)):
        return [make_fragments(n, radius, points, spacing, max_fragments, seed, min_area_frac) for n in neuron]
    xyz, node_radius, _, pidx = skeleton_geometry(neuron.skeleton)
    child = np.nonzero(pidx >= 0)[0]
    with np.errstate(over="ignore", invalid="ignore"):
        cable = float(np.linalg.norm(xyz[child] - xyz[pidx[child]], axis=1).sum())
    n_faces = len(neuron.mesh.faces) if neuron.mesh is not None else 0
    check_workload(neuron.source, xyz, node_radius, pidx, cable, radius, points, spacing, max_fragments, n_faces)
    if cable < 2 * radius:
        raise DataError(neuron.source, "neuron", f"neuron is smaller than one crop: {cable:.3g} µm of cable < crop diameter {2 * radius:g} µm")
    rng = neuron_rng(seed, neuron.id)
    anchors, nearest = anchors_along_cable(xyz, pidx, spacing, rng)
    order = rng.permutation(len(anchors)) if max_fragments and len(anchors) > max_fragments else np.arange(len(anchors))
    limit = max_fragments or len(anchors)
    min_area = min_area_frac * np.pi * radius**2
    pts, idx = crop_fragments(neuron_surface(neuron, radius), anchors[order], radius, points, rng, min_area, limit)
    tried = int(idx.max()) + 1 if len(idx) >= limit else len(anchors)  # crops stop once the limit is reached
    skipped = tried - len(idx)
    if not len(pts):
        raise DataError(neuron.source, "neuron", f"no fragment: all {len(anchors)} anchors have less than {min_area:.3g} µm² of surface within {radius:g} µm")
    idx = order[idx]
    keep = np.argsort(idx)  # store in cable order, not draw order
    pts = pts[keep]
    idx = idx[keep]
    soma = np.asarray(neuron.node_types) == 1
    with warnings.catch_warnings():  # missing radii were reported once, when the surface was built
        warnings.simplefilter("ignore")
        radii, _ = fill_radii(node_radius, np.zeros(len(soma), bool))  # contour somata often carry radius 0
    ends, caliber = crop_topology(xyz, pidx, radii, anchors[idx], radius, soma)
    return Fragments(
        points=pts,
        anchor_um=anchors[idx].astype(np.float32),
        neurite_type=np.asarray(neuron.node_types)[nearest[idx]].astype(np.int8),
        cable_ends=ends,
        caliber=(caliber / radius).astype(np.float32),
        cable_um=cable,
        n_anchors=len(anchors),
        n_skipped=skipped,
    )
