"""Augmentation arms: what replaces a share of the real objects in the training volumes.

An arm is one registered :class:`Arm`: its name, a line of help, and how to make ``n``
replacement objects from :class:`ArmSources`. Everything else — packing, rendering,
over-segmentation, candidate views, classifier, agglomeration — is the same for every arm, so
an arm's effect is the effect of its objects' shapes. A new arm is one function and one
``register(Arm(...))`` line here; the experiment picks it up (``--arms``).

* ``real``: nothing is replaced (the baseline every other arm is compared with);
* ``synthetic``: fragments from the generator (samples.npz);
* ``jitter``: other real training fragments with Gaussian noise on every point;
* ``elastic``: other real training fragments, scaled and smoothly deformed
  (:func:`mogen.augment.examples.elastic_deform`);
* ``random-walk``: fragments of random-walk neurons (:mod:`mogen.augment.random_walk`).

Examples
--------
>>> import numpy as np
>>> from mogen.augment.random_walk import random_walk_fragments
>>> src = ArmSources(real_points=random_walk_fragments(8, 256, seed=1), real_cells=np.array(list("aabbccdd")), radius_um=10.0)
>>> objs = ARMS["elastic"].make(src, 3, np.random.default_rng(0))
>>> len(objs), objs[0].kind, objs[0].points_um.shape
(3, 'elastic', (256, 3))
>>> ARMS["real"].replaces
False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mogen.augment.examples import elastic_deform, jitter
from mogen.augment.random_walk import random_walk_fragments
from mogen.augment.volume import Obj


@dataclass
class ArmSources:
    """What arms draw their objects from (unit-ball fragments; ×``radius_um`` gives µm)."""

    real_points: np.ndarray  # [F, N, 3] real fragments (may be a memmap)
    real_cells: np.ndarray  # [F] their cells
    radius_um: float
    real_rows: np.ndarray | None = None  # rows arms may draw (the classifier's training cells); None: all
    samples: np.ndarray | None = None  # [S, N, 3] generated fragments, unit ball
    samples_name: str = "samples.npz"
    jitter_um: float = 0.1

    @property
    def n_points(self) -> int:
        return int(self.real_points.shape[1])


@dataclass(frozen=True)
class Arm:
    """An augmentation arm: ``make(sources, n, rng)`` returns ``n`` objects to put in place of real ones."""

    name: str
    help: str
    make: Callable[[ArmSources, int, np.random.Generator], list[Obj]] | None  # None: replaces nothing
    needs_samples: bool = False

    @property
    def replaces(self) -> bool:
        return self.make is not None


ARMS: dict[str, Arm] = {}


def register(arm: Arm) -> Arm:
    if arm.name in ARMS:
        raise ValueError(f"arm {arm.name!r} is registered twice")
    ARMS[arm.name] = arm
    return arm


def _real_rows(src: ArmSources, n: int, rng: np.random.Generator) -> np.ndarray:
    rows = np.arange(len(src.real_points)) if src.real_rows is None else np.asarray(src.real_rows)
    return np.sort(rng.choice(rows, size=n, replace=n > len(rows)))


def _synthetic(src: ArmSources, n: int, rng: np.random.Generator) -> list[Obj]:
    rows = rng.choice(len(src.samples), size=n, replace=n > len(src.samples))
    return [Obj(np.asarray(src.samples[i], float) * src.radius_um, "synthetic", "synthetic", f"{src.samples_name}#{i}")
            for i in rows]


def _jitter(src: ArmSources, n: int, rng: np.random.Generator) -> list[Obj]:
    rows = _real_rows(src, n, rng)
    pts = jitter(np.asarray(src.real_points[rows], float) * src.radius_um, src.jitter_um, seed=int(rng.integers(2**31)))
    return [Obj(p, f"jitter:{src.real_cells[i]}", "jitter", f"real#{i}") for p, i in zip(pts, rows)]


def _elastic(src: ArmSources, n: int, rng: np.random.Generator) -> list[Obj]:
    rows = _real_rows(src, n, rng)
    pts = elastic_deform(np.asarray(src.real_points[rows]), seed=int(rng.integers(2**31))) * src.radius_um
    return [Obj(p.astype(float), f"elastic:{src.real_cells[i]}", "elastic", f"real#{i}") for p, i in zip(pts, rows)]


def _random_walk(src: ArmSources, n: int, rng: np.random.Generator) -> list[Obj]:
    seed = int(rng.integers(2**31))
    pts = random_walk_fragments(n, src.n_points, src.radius_um, seed=seed, per_neuron=4) * src.radius_um
    return [Obj(p.astype(float), f"random-walk:{seed}:{k // 4}", "random-walk", f"random-walk#{seed}:{k}") for k, p in enumerate(pts)]


register(Arm("real", "real objects only (the baseline)", None))
register(Arm("synthetic", "generated fragments (samples.npz) in place of a share of the real ones", _synthetic, needs_samples=True))
register(Arm("jitter", "control: other real training fragments with Gaussian noise (0.1 µm) on every point", _jitter))
register(Arm("elastic", "control: other real training fragments, scaled and elastically deformed", _elastic))
register(Arm("random-walk", "control: fragments of random-walk neurons", _random_walk))
