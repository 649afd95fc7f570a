"""Reference sets that bracket a generator's scores, scored in the same run.

All in unit-ball coordinates, shaped like the reference set [n, N, 3]:

- ``real_train``: real training fragments scored against held-out ones. Held-out neurons
  differ from training neurons, so this is what a perfect generator of the *training*
  distribution scores: the ceiling.
- ``memoriser``: other training fragments with small Gaussian jitter (default 0.01 = 0.1 µm
  at R = 10 µm): looks perfect on distribution metrics and must be caught by the
  memorisation check.
- ``gaussian_blob``: isotropic Gaussian clouds centred at the anchor, with the reference's
  mean per-axis spread: right size, no shape. A floor.
- ``random_cylinder``: the surface of a straight cylinder through a point near the anchor,
  random direction, spanning the unit ball, radius 0.02-0.1 (0.2-1 µm at R = 10 µm): a
  crude neurite. A floor a generator must beat clearly.

Examples
--------
>>> import numpy as np
>>> ref = np.random.default_rng(0).normal(size=(4, 128, 3)) * 0.2
>>> sets = make_baselines(ref, train=ref, n=4, seed=0)
>>> sorted(sets), sets["random_cylinder"].shape
(['gaussian_blob', 'memoriser', 'random_cylinder', 'real_train'], (4, 128, 3))
"""

from __future__ import annotations

import numpy as np

BASELINE_LABELS = {
    "real_train": "real train fragments (ceiling)",
    "memoriser": "jittered train fragments (memoriser)",
    "gaussian_blob": "Gaussian blob (floor)",
    "random_cylinder": "random cylinder (floor)",
}


def gaussian_blobs(n: int, points: int, std: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.normal(size=(n, points, 3)) * std).astype(np.float32)


def random_cylinders(n: int, points: int, rng: np.random.Generator) -> np.ndarray:
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    # two unit vectors orthogonal to the axis
    u = np.cross(axis, rng.normal(size=(n, 3)))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(axis, u)
    offset = rng.uniform(0.0, 0.3, (n, 1)) * u  # passes within 0.3 of the anchor
    half = np.sqrt(1.0 - (offset**2).sum(1, keepdims=True))  # half-chord inside the unit ball
    radius = rng.uniform(0.02, 0.1, (n, 1, 1))
    t = rng.uniform(-1.0, 1.0, (n, points, 1)) * half[:, None]
    angle = rng.uniform(0.0, 2 * np.pi, (n, points, 1))
    ring = np.cos(angle) * u[:, None] + np.sin(angle) * v[:, None]
    return (offset[:, None] + t * axis[:, None] + radius * ring).astype(np.float32)


def make_baselines(reference, train, n: int, seed: int = 0, jitter: float = 0.01) -> dict[str, np.ndarray]:
    """The four baseline sets (see module docstring), each [n, N, 3] float32.

    ``train`` may be a memmap; only the rows drawn are read. The real and memoriser sets use
    disjoint random training fragments when there are enough of them.
    """
    rng = np.random.default_rng(seed)
    reference = np.asarray(reference, dtype=np.float32)
    points = reference.shape[1]
    if len(train) < n:
        raise ValueError(f"baselines need at least n={n} training fragments, the train split has {len(train)}")
    order = rng.permutation(len(train))
    real_idx = np.sort(order[:n])
    mem_idx = np.sort(order[n : 2 * n]) if len(train) >= 2 * n else np.sort(rng.permutation(len(train))[:n])
    real = np.asarray(train[real_idx], dtype=np.float32)
    memoriser = np.asarray(train[mem_idx], dtype=np.float32)
    memoriser = memoriser + rng.normal(0.0, jitter, memoriser.shape).astype(np.float32)
    spread = float(reference.std(axis=1).mean())
    return {
        "real_train": real,
        "memoriser": memoriser,
        "gaussian_blob": gaussian_blobs(n, points, spread, rng),
        "random_cylinder": random_cylinders(n, points, rng),
    }
