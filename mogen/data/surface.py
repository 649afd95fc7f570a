"""Uniform points on a neuron's surface, from a mesh or from a skeleton's tube.

A surface is a set of primitives (mesh triangles; skeleton frusta and soma spheres), each
with an area, a bounding sphere (``centers``, ``bounds``) and a way to draw uniform points
on it. Drawing a primitive with probability ∝ area and then a uniform point on it gives a
uniform sample of the whole surface; :mod:`mogen.data.fragments` uses the bounding spheres
to find the primitives that can touch a crop.

Skeleton tubes: every edge (child, parent) is the lateral surface of a frustum with the two
node radii, radius linear along the axis. Its area element is ∝ r(u), so the axial position
u is drawn with density ∝ r(u) and the point is ``axis(u) + r(u)(cos θ e1 + sin θ e2)``: it
lies exactly at distance r(u) from the axis. Somata are spheres (see :func:`skeleton_surface`).
"""

from __future__ import annotations

import warnings

import numpy as np

# Radius used where a node has none (radius 0/NaN) and the neuron has no positive radius to
# borrow from: a thin neurite. Otherwise the median of the neuron's positive radii is used.
DEFAULT_RADIUS_UM = 0.5


class Surface:
    """Base class: primitives with ``areas``, ``centers``, ``bounds`` and ``sample_on``."""

    areas: np.ndarray
    centers: np.ndarray
    bounds: np.ndarray

    def __len__(self) -> int:
        return len(self.areas)

    @property
    def area(self) -> float:
        return float(self.areas.sum())

    def sample_on(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One uniform point on each primitive ``idx[i]`` -> [len(idx), 3]."""
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator, subset: np.ndarray | None = None) -> np.ndarray:
        """``n`` uniform points on the surface (or on the primitives in ``subset``)."""
        idx = np.arange(len(self)) if subset is None else np.asarray(subset)
        cdf = np.cumsum(self.areas[idx])
        u = rng.random(n) * cdf[-1]
        # the same picks, searched in sorted order: numpy's binary search then starts from the
        # previous key's place (half the time of random-order keys)
        order = np.argsort(u)
        pick = np.empty(n, np.intp)
        pick[order] = np.searchsorted(cdf, u[order], side="right")
        return self.sample_on(idx[np.minimum(pick, len(idx) - 1)], rng)


class MeshSurface(Surface):
    """Area-weighted sampling of a triangle mesh.

    Examples
    --------
    >>> import trimesh
    >>> s = MeshSurface(trimesh.creation.icosphere().vertices, trimesh.creation.icosphere().faces)
    >>> p = s.sample(100, np.random.default_rng(0))
    >>> bool(np.allclose(np.linalg.norm(p, axis=1), 1, atol=0.02))
    True
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
        self.a, self.ab, self.ac = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        self.areas = 0.5 * np.linalg.norm(np.cross(self.ab, self.ac), axis=1)
        self.centers = tri.mean(1)
        self.bounds = np.linalg.norm(tri - self.centers[:, None], axis=-1).max(1)

    def sample_on(self, idx, rng):
        u, v = rng.random((2, len(idx)))
        flip = u + v > 1  # fold the square onto the triangle: uniform in area
        u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
        return self.a[idx] + u[:, None] * self.ab[idx] + v[:, None] * self.ac[idx]


class TubeSurface(Surface):
    """Frusta (p0, r0) -> (p1, r1) plus spheres (centre, radius).

    Examples
    --------
    >>> s = TubeSurface(np.zeros((1, 3)), np.array([[10.0, 0, 0]]), np.array([1.0]), np.array([1.0]))
    >>> p = s.sample(50, np.random.default_rng(0))
    >>> bool(np.allclose(np.linalg.norm(p[:, 1:], axis=1), 1))
    True
    """

    def __init__(self, p0, p1, r0, r1, sphere_centers=None, sphere_radii=None):
        p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
        r0, r1 = np.asarray(r0, float), np.asarray(r1, float)
        axis = p1 - p0
        length = np.linalg.norm(axis, axis=1)
        keep = length > 0  # a zero-length edge has no lateral surface
        self.p0, self.axis, self.r0, self.r1 = p0[keep], axis[keep], r0[keep], r1[keep]
        length = length[keep]
        d = self.axis / length[:, None]
        # e1 ⟂ d: cross with the coordinate axis least aligned with d.
        helper = np.eye(3)[np.argmin(np.abs(d), axis=1)]
        e1 = np.cross(d, helper)
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        self.e1, self.e2 = e1, np.cross(d, e1)
        frusta_area = np.pi * (self.r0 + self.r1) * np.sqrt(length**2 + (self.r1 - self.r0) ** 2)
        sc = np.zeros((0, 3)) if sphere_centers is None else np.asarray(sphere_centers, float).reshape(-1, 3)
        sr = np.zeros(0) if sphere_radii is None else np.asarray(sphere_radii, float).reshape(-1)
        self.sphere_c, self.sphere_r = sc, sr
        self.n_frusta = len(self.p0)
        self.areas = np.concatenate([frusta_area, 4 * np.pi * sr**2])
        self.centers = np.concatenate([self.p0 + self.axis / 2, sc])
        self.bounds = np.concatenate([length / 2 + np.maximum(self.r0, self.r1), sr])

    def sample_on(self, idx, rng):
        f = idx < self.n_frusta
        everywhere = bool(f.all())  # most crops hold no soma: skip the masked copies
        i = idx if everywhere else idx[f]
        r0, r1 = self.r0[i], self.r1[i]
        q, theta = rng.random(len(i)), rng.random(len(i)) * 2 * np.pi
        # Inverse CDF of density ∝ r0 + (r1 - r0) u on [0, 1], written to stay stable at r0 ≈ r1.
        u = q * (r0 + r1) / (r0 + np.sqrt(r0**2 + q * (r1**2 - r0**2)))
        r = r0 + (r1 - r0) * u
        ring = np.cos(theta)[:, None] * self.e1[i] + np.sin(theta)[:, None] * self.e2[i]
        on_frusta = self.p0[i] + u[:, None] * self.axis[i] + r[:, None] * ring
        if everywhere:
            return on_frusta
        out = np.empty((len(idx), 3))
        out[f] = on_frusta
        j = idx[~f] - self.n_frusta
        if len(j):
            g = rng.standard_normal((len(j), 3))
            g /= np.linalg.norm(g, axis=1, keepdims=True)
            out[~f] = self.sphere_c[j] + self.sphere_r[j, None] * g
        return out


def skeleton_geometry(tree):
    """Node arrays of a TreeNeuron: ``xyz [n,3], radius [n], label [n], parent_index [n]`` (-1 root)."""
    nodes = tree.nodes
    ids = nodes.node_id.to_numpy()
    order = np.argsort(ids)
    par = nodes.parent_id.to_numpy()
    pos = np.searchsorted(ids[order], par)
    pidx = np.where(par < 0, -1, order[np.minimum(pos, len(ids) - 1)])
    xyz = nodes[["x", "y", "z"]].to_numpy(np.float64)
    label = nodes["label"].to_numpy() if "label" in nodes else np.zeros(len(nodes), int)
    return xyz, nodes.radius.to_numpy(np.float64).copy(), np.asarray(label, dtype=np.int64), pidx


def fill_radii(radius: np.ndarray, soma: np.ndarray, name: str = "neuron") -> tuple[np.ndarray, int]:
    """Replace missing radii (≤ 0 or NaN) on non-soma nodes, warning with a count.

    Missing radii become the median of the neuron's positive radii, or ``DEFAULT_RADIUS_UM``
    if it has none. Soma nodes are exempt: somata are drawn as spheres.
    """
    r = np.asarray(radius, dtype=np.float64).copy()
    bad = ~(r > 0) & ~soma
    n_bad = int(bad.sum())
    if n_bad:
        good = r[r > 0]
        fill = float(np.median(good)) if len(good) else DEFAULT_RADIUS_UM
        r[bad] = fill
        warnings.warn(
            f"{name}: {n_bad} of {int((~soma).sum())} non-soma nodes have a missing or zero radius; using {fill:.3g} µm "
            f"({'median of the positive radii' if len(good) else 'default'})",
            stacklevel=2,
        )
    return r, n_bad


def skeleton_surface(tree, soma_label: int = 1, max_length: float | None = None, soma_nodes=None) -> TubeSurface:
    """The tube surface of a skeleton (µm), with somata as spheres.

    - An edge whose parent is a soma node uses the child's radius at both ends: the neurite
      starts at the soma surface and the soma itself is a sphere.
    - Soma: one soma node → a sphere of its radius. Several (a contour or a cylinder stack)
      → one sphere at their centroid, radius the larger of their mean distance to it and
      their largest radius; edges between soma nodes are dropped.
    - Edges longer than ``max_length`` are split into equal pieces (exact, radius is linear),
      so each primitive's bounding sphere stays small for crop queries.
    """
    xyz, radius, label, pidx = skeleton_geometry(tree)
    soma = label == soma_label if soma_nodes is None else np.isin(tree.nodes.node_id.to_numpy(), soma_nodes)
    r, _ = fill_radii(radius, soma, getattr(tree, "file", None) or str(getattr(tree, "name", "neuron")))
    child = np.nonzero(pidx >= 0)[0]
    par = pidx[child]
    soma_soma = soma[child] & soma[par]
    child, par = child[~soma_soma], par[~soma_soma]
    r_child = r[child]
    r_par = np.where(soma[par], r_child, r[par])
    p0, p1 = xyz[par], xyz[child]
    # Soma-child nodes with no radius (contour nodes that are not soma-labelled never happen here).
    r_par = np.where(r_par > 0, r_par, r_child)
    if max_length:
        length = np.linalg.norm(p1 - p0, axis=1)
        k = np.maximum(1, np.ceil(length / max_length)).astype(int)
        if len(k) and k.max() > 1:
            rep = np.repeat(np.arange(len(k)), k)
            j = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
            t0, t1 = (j / k[rep])[:, None], ((j + 1) / k[rep])[:, None]
            a, b, ra, rb = p0[rep], p1[rep], r_par[rep], r_child[rep]
            p0, p1 = a + t0 * (b - a), a + t1 * (b - a)
            r_par, r_child = ra + t0[:, 0] * (rb - ra), ra + t1[:, 0] * (rb - ra)
    sc, sr = soma_spheres(xyz, radius, soma, pidx)
    return TubeSurface(p0, p1, r_par, r_child, sc, sr)


def soma_spheres(xyz, radius, soma, pidx):
    """One sphere per connected group of soma nodes (see :func:`skeleton_surface`)."""
    idx = np.nonzero(soma)[0]
    if len(idx) == 0:
        return np.zeros((0, 3)), np.zeros(0)
    # Group soma nodes joined by soma-soma edges (union by following parents).
    group = {}
    for i in idx:
        j = i
        while pidx[j] >= 0 and soma[pidx[j]]:
            j = pidx[j]
        group.setdefault(j, []).append(i)
    centers, radii = [], []
    for members in group.values():
        pts = xyz[members]
        c = pts.mean(0)
        rr = np.nan_to_num(radius[members], nan=0.0)
        r = max(float(np.linalg.norm(pts - c, axis=1).mean()), float(rr.max()))
        if r > 0:
            centers.append(c)
            radii.append(r)
    return np.asarray(centers).reshape(-1, 3), np.asarray(radii)
