"""Merge and split examples from neuron fragments.

A *merge candidate* is two pieces of neurite put in contact, the object an agglomerating
reconstruction pipeline must accept (same neuron) or reject (two neurons):

* **true join**: a fragment cut by a plane through its centre, the two halves put back;
* **false merge**: the near half of one fragment and the far half of a fragment of *another*
  neuron, cut by the same plane.

Contact geometry is drawn the same way in both classes so that only morphology tells them
apart: the far piece is moved along the plane's normal until the closest distance between the
pieces equals a contact distance drawn from one distribution, the candidate is recentred on the
contact point, cropped to the unit ball and thinned on a fixed grid (so point density, which
differs between fragments, is no clue either).

A *split example* is one half of a cut fragment: an object that ends abruptly at the cut, as a
segment does where a reconstruction broke a neurite.

All coordinates are unit-ball fragment coordinates (µm / R).

Examples
--------
>>> import numpy as np
>>> from mogen.augment.random_walk import random_walk_fragments
>>> frags = random_walk_fragments(16, n_points=1024, seed=0)
>>> ids = np.repeat(np.arange(4), 4)
>>> pool = build_candidates(frags, ids, 8, n_points=256, seed=0)
>>> pool.points.shape, sorted(set(pool.labels.tolist()))
((8, 256, 3), [0, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

# Contact distances in unit-ball units (×R µm: 0.05–0.5 µm at R = 10 µm), a gap that a
# membrane-plus-cleft boundary in EM leaves between two touching objects.
CONTACT_RANGE = (0.005, 0.05)
# Grid cell used to even out point density before sampling (0.4 µm at R = 10 µm).
GRID_CELL = 0.04
# Band around the cut plane searched for the closest pair; exact for the shifts used.
_SLAB = 0.35
_SHIFT_RANGE = (-0.2, 0.5)


@dataclass
class Candidates:
    """A set of merge candidates.

    points [n, P, 3] float32 (centred on the contact), labels [n] int8 (1 true join, 0 false
    merge), contact_distance [n] (realised closest distance between the two pieces), shift [n]
    (how far the far piece moved along the normal), piece_fraction [n] (share of points in the
    near piece), neuron_a / neuron_b [n] (source neuron ids).
    """

    points: np.ndarray
    labels: np.ndarray
    contact_distance: np.ndarray
    shift: np.ndarray
    piece_fraction: np.ndarray
    neuron_a: np.ndarray
    neuron_b: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def grid_thin(points: np.ndarray, cell: float = GRID_CELL) -> np.ndarray:
    """Keep one point per grid cell (the first), so density no longer depends on the source."""
    keys = np.floor(points / cell).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return points[np.sort(first)]


def random_unit_vector(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _closest(tree: cKDTree, pts: np.ndarray) -> tuple[float, int, int]:
    d, j = tree.query(pts)
    i = int(np.argmin(d))
    return float(d[i]), int(j[i]), i


def join_pieces(
    near: np.ndarray,
    far: np.ndarray,
    normal: np.ndarray,
    contact: float,
    n_points: int,
    rng: np.random.Generator,
    tol: float = 1e-3,
    view: float = 1.0,
) -> tuple[np.ndarray, float, float, float] | None:
    """Move ``far`` along ``normal`` until its closest distance to ``near`` is ``contact``.

    The candidate is what lies within ``view`` of the contact point, scaled by 1/``view`` so
    it fills the unit ball (``view`` < 1 zooms in on the contact).

    Returns ``(cloud [n_points, 3] centred on the contact point, realised distance, shift,
    near fraction)`` or None when no shift in the searched range gives that distance (the
    caller then draws another plane; the rule is the same for both classes).
    """
    near_band = near[near @ normal > -_SLAB]
    far_band = far[far @ normal < _SLAB]
    if len(near_band) == 0 or len(far_band) == 0:
        return None
    tree = cKDTree(near_band)
    lo, hi = _SHIFT_RANGE
    if _closest(tree, far_band + lo * normal)[0] >= contact:
        return None
    if _closest(tree, far_band + hi * normal)[0] < contact:
        return None
    for _ in range(40):  # bisection on the shift
        mid = 0.5 * (lo + hi)
        d = _closest(tree, far_band + mid * normal)[0]
        if abs(d - contact) < tol:
            break
        lo, hi = (mid, hi) if d < contact else (lo, mid)
    d, j, i = _closest(tree, far_band + mid * normal)
    centre = 0.5 * (near_band[j] + far_band[i] + mid * normal)
    moved = far + mid * normal
    cloud = np.concatenate([near, moved]) - centre
    is_near = np.r_[np.ones(len(near), bool), np.zeros(len(moved), bool)]
    inside = np.linalg.norm(cloud, axis=1) <= view
    cloud, is_near = cloud[inside] / view, is_near[inside]
    pick = rng.choice(len(cloud), size=n_points, replace=len(cloud) < n_points)
    return cloud[pick].astype(np.float32), d, mid, float(is_near.mean())


def split_example(fragment: np.ndarray, rng: np.random.Generator, min_fraction: float = 0.2) -> np.ndarray:
    """One half of ``fragment`` cut by a random plane through its centre (a truncated object)."""
    for _ in range(50):
        n = random_unit_vector(rng)
        side = fragment @ n < 0
        if min_fraction <= side.mean() <= 1 - min_fraction:
            return fragment[side]
    raise ValueError("no plane through the centre splits this fragment into two real pieces")


def build_candidates(
    fragments: np.ndarray,
    neuron_ids: np.ndarray,
    n: int,
    n_points: int = 512,
    seed: int = 0,
    true_fraction: float = 0.5,
    partners: tuple[np.ndarray, np.ndarray] | None = None,
    only: str | None = None,
    min_fraction: float = 0.15,
    view: float = 1.0,
    progress: bool = False,
) -> Candidates:
    """Draw ``n`` merge candidates from unit-ball ``fragments`` [F, N, 3] of ``neuron_ids`` [F].

    A candidate is a true join with probability ``true_fraction``. False merges take the far
    piece from a fragment of another neuron, from ``partners = (fragments, ids)`` when given
    (e.g. other held-out neurons) else from ``fragments`` itself. ``only="true"``/``"false"``
    draws one class. The plane must leave at least ``min_fraction`` of each fragment's points on
    each side, in both classes. ``view`` (≤ 1) zooms on the contact: the candidate is the ball
    of radius ``view`` around it, rescaled to the unit ball.
    """
    rng = np.random.default_rng(seed)
    neuron_ids = np.asarray(neuron_ids).astype(str)
    p_frags, p_ids = (fragments, neuron_ids) if partners is None else (partners[0], np.asarray(partners[1]).astype(str))
    if len(fragments) == 0:
        raise ValueError("no fragments to build merge candidates from")
    want_false = only != "true" and true_fraction < 1
    if want_false and len(set(p_ids) | set(neuron_ids)) < 2:
        raise ValueError("false merges need fragments of at least two neurons")
    thinned: dict[tuple[int, int], np.ndarray] = {}

    def thin(which: int, i: int) -> np.ndarray:
        if (which, i) not in thinned:
            src = fragments if which == 0 else p_frags
            thinned[(which, i)] = grid_thin(np.asarray(src[i], dtype=np.float64))
        return thinned[(which, i)]

    out = {k: [] for k in ("points", "labels", "contact_distance", "shift", "piece_fraction", "neuron_a", "neuron_b")}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="merge candidates", leave=False)
    tries = 0
    label = None
    while len(out["labels"]) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"could only build {len(out['labels'])} of {n} candidates; fragments too small?")
        # the class is drawn once per candidate and kept through retries, so failures do not
        # tilt the class balance
        if label is None:
            label = 1 if only == "true" else 0 if only == "false" else int(rng.random() < true_fraction)
        a = int(rng.integers(len(fragments)))
        if label:
            b_src, b = 0, a
        else:
            others = np.flatnonzero(p_ids != neuron_ids[a])
            if len(others) == 0:
                continue
            b_src, b = (0 if partners is None else 1), int(rng.choice(others))
        A, B = thin(0, a), thin(b_src, b)
        normal = random_unit_vector(rng)
        side_a, side_b = A @ normal < 0, B @ normal < 0
        # the same rule for both classes: each fragment must have enough points on both sides
        # of the plane (as a true join's single fragment must)
        if not (min_fraction <= side_a.mean() <= 1 - min_fraction and min_fraction <= side_b.mean() <= 1 - min_fraction):
            continue
        near, far = A[side_a], B[~side_b]
        joined = join_pieces(near, far, normal, rng.uniform(*CONTACT_RANGE), n_points, rng, view=view)
        if joined is None:
            continue
        cloud, d, shift, frac = joined
        for k, v in zip(out, (cloud, label, d, shift, frac, neuron_ids[a], (p_ids if b_src else neuron_ids)[b])):
            out[k].append(v)
        label = None
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return Candidates(
        points=np.stack(out["points"]).astype(np.float32),
        labels=np.asarray(out["labels"], np.int8),
        contact_distance=np.asarray(out["contact_distance"]),
        shift=np.asarray(out["shift"]),
        piece_fraction=np.asarray(out["piece_fraction"]),
        neuron_a=np.asarray(out["neuron_a"]),
        neuron_b=np.asarray(out["neuron_b"]),
    )


def elastic_deform(fragments: np.ndarray, seed: int = 0, jitter: float = 0.005, strength: float = 0.06,
                   width: float = 0.35, n_centres: int = 6, scale: float = 0.1) -> np.ndarray:
    """Jittered, elastically deformed copies of unit-ball fragments (the augmentation control).

    Each fragment gets a random anisotropic scaling (±``scale``), a smooth displacement field
    (a sum of ``n_centres`` Gaussian bumps of ``width`` with amplitude ``strength``) and
    per-point Gaussian jitter of ``jitter``.
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
