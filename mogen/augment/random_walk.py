"""Random-walk neurons: the control arm's "synthetic" data.

A random-walk neuron is the simplest thing that looks like a neuron at 10 µm: tubes that wander
with some persistence and branch now and then. It is the baseline a learned generator must beat
when its fragments are used for augmentation (the reconstruction benchmark's "random-walk" arm).

Skeletons here are ``(nodes [M, 3] µm, parents [M] int, -1 at roots, radii [M] µm)``.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> nodes, parents, radii = random_walk_skeleton(rng, n_nodes=200)
>>> pts = random_walk_surface(nodes, parents, radii).sample(1000, rng)
>>> frags = random_walk_fragments(8, n_points=256, radius_um=10.0, seed=0)
>>> frags.shape, bool(np.abs(frags).max() <= 1.0 + 1e-6)
((8, 256, 3), True)
"""

from __future__ import annotations

import numpy as np

from mogen.data.fragments import crop_fragments
from mogen.data.surface import TubeSurface


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def random_walk_skeleton(
    rng: np.random.Generator,
    n_nodes: int = 400,
    step_um: float = 1.0,
    persistence: float = 0.9,
    branch_prob: float = 0.02,
    radius_um: tuple[float, float] = (0.1, 0.6),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grow a branching random walk from the origin.

    Each tip moves ``step_um`` per node in a direction that keeps ``persistence`` of the
    previous one; with ``branch_prob`` a node starts a new tip. Each branch gets one radius
    drawn log-uniformly from ``radius_um`` that tapers slightly along it.
    """
    lo, hi = np.log(radius_um[0]), np.log(radius_um[1])
    nodes = [np.zeros(3)]
    parents = [-1]
    radii = [float(np.exp(rng.uniform(lo, hi)))]
    # tips: (node index, direction, radius)
    tips = [(0, _unit(rng.normal(size=3)), radii[0])]
    while len(nodes) < n_nodes and tips:
        i = int(rng.integers(len(tips)))
        idx, direction, r = tips[i]
        direction = _unit(persistence * direction + (1 - persistence) * _unit(rng.normal(size=3)) * 2.0)
        r = max(r * 0.995, radius_um[0] * 0.5)
        nodes.append(nodes[idx] + step_um * direction)
        parents.append(idx)
        radii.append(r)
        tips[i] = (len(nodes) - 1, direction, r)
        if rng.random() < branch_prob:
            new_r = float(np.exp(rng.uniform(lo, np.log(max(r, radius_um[0] * 1.01)))))
            tips.append((len(nodes) - 1, _unit(direction + rng.normal(size=3)), new_r))
        if rng.random() < branch_prob / 4 and len(tips) > 1:  # a tip ends
            tips.pop(i)
    return np.asarray(nodes), np.asarray(parents), np.asarray(radii)


def random_walk_surface(nodes: np.ndarray, parents: np.ndarray, radii: np.ndarray) -> TubeSurface:
    """The tube surface of a random-walk skeleton: the same frusta real skeletons get
    (:class:`mogen.data.surface.TubeSurface`), so both are sampled the same way."""
    child = np.flatnonzero(parents >= 0)
    if len(child) == 0:
        raise ValueError("skeleton has no edges to put a surface on")
    par = parents[child]
    return TubeSurface(nodes[par], nodes[child], radii[par], radii[child])


def random_walk_fragments(
    n: int,
    n_points: int = 2048,
    radius_um: float = 10.0,
    seed: int = 0,
    per_neuron: int = 16,
) -> np.ndarray:
    """``n`` unit-ball fragments cropped from random-walk neurons around points on their cable.

    Every ``per_neuron`` fragments come from one freshly grown neuron; crops are centred on a
    random skeleton node, as real fragments are centred on an anchor on the cable.
    """
    rng = np.random.default_rng(seed)
    frags: list[np.ndarray] = []
    while sum(len(f) for f in frags) < n:
        nodes, parents, radii = random_walk_skeleton(rng, n_nodes=int(rng.integers(150, 600)))
        anchors = nodes[rng.choice(len(nodes), size=per_neuron)]
        f, _ = crop_fragments(random_walk_surface(nodes, parents, radii), anchors, radius_um, n_points, rng)
        frags.append(f)
    return np.concatenate(frags)[:n]
