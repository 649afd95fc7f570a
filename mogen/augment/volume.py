"""One benchmark volume: objects packed and rendered into labels, over-segmented, cut into candidates.

    objects (surface points, µm) ──pack_objects──▶ labels ──oversegment──▶ supervoxels
        ──find_candidates──▶ touching pairs ──ViewCutter──▶ unit-ball views for the classifier

:class:`VolumeSpec` holds every setting of that path; :func:`render_volume` packs and renders;
:meth:`Volume.replaced` swaps some objects for others at the same placements (how an
augmentation arm puts its objects into a training volume while everything else stays put);
:func:`cut_candidates` over-segments and cuts. The experiment (``mogen.evaluate.augment``)
and ``mogen augment render/examples`` both go through these functions.

Examples
--------
>>> import numpy as np
>>> from mogen.augment.random_walk import random_walk_fragments
>>> spec = VolumeSpec(extent_um=4.0, voxel_nm=(200, 200, 200), objects=6, view_um=2.0, points=32)
>>> objs = [Obj(f * 10.0, f"cell{i}", "real", f"rw/{i}") for i, f in enumerate(random_walk_fragments(6, 512, seed=0))]
>>> vol = render_volume(objs, spec, seed=0)
>>> vol.labels.shape, bool(vol.labels.max() <= 6)
((20, 20, 20), True)
>>> cut = cut_candidates(vol.labels, vol.grid, spec, seed=0)
>>> cut.views.shape[1:], len(cut.candidates) == len(cut.views)
((32, 3), True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from mogen.augment.examples import Candidates, ViewCutter, find_candidates
from mogen.augment.render import DILATE_UM, ERODE_UM, Grid, Placement, pack_labels, pack_objects, points_to_solid
from mogen.augment.segment import oversegment
from mogen.errors import UsageError

# Peak memory of the path is about 60 bytes per voxel (labels, distance transforms with their
# indices, supervoxel keys); 2**26 voxels (a 400^3 block) stays under 4 GiB.
MAX_VOXELS = 2**26


@dataclass(frozen=True)
class VolumeSpec:
    """How a volume is packed, rendered, over-segmented and cut (lengths in µm, voxels in nm z, y, x)."""

    extent_um: float = 10.0  # edge of the cubic block
    voxel_nm: tuple[float, float, float] = (100.0, 100.0, 100.0)
    objects: int = 40  # objects packed into it (fewer if no placement is found)
    max_overlap: float = 0.1  # share of an object's points allowed inside objects already placed
    tries: int = 20  # placements drawn per object before it is left out
    dilate_um: float = DILATE_UM
    erode_um: float = ERODE_UM
    block_um: float = 4.0  # segmentation block edge (0: no block cuts)
    neck_um: float = 0.15  # watershed seed height (0: no neck splits)
    view_um: float = 3.0  # radius of the classifier's view around a contact
    points: int = 256  # points per view

    def grid(self, centre_um=(0.0, 0.0, 0.0)) -> Grid:
        return Grid.around(np.asarray(centre_um, float), self.extent_um, self.voxel_nm)

    @property
    def voxels(self) -> int:
        return int(np.prod([max(1, round(self.extent_um * 1000.0 / v)) for v in self.voxel_nm]))

    def check(self) -> "VolumeSpec":
        """Raise :class:`UsageError` (naming the command-line option) for a setting no volume can be made with."""
        def bad(name, why):
            raise UsageError(f"{OPTIONS.get(name, name)}: {why}")

        if len(self.voxel_nm) != 3 or not all(np.isfinite(v) and v > 0 for v in self.voxel_nm):
            bad("voxel_nm", f"voxel sizes must be positive numbers (nm, z y x), got {list(self.voxel_nm)}")
        for name in ("extent_um", "view_um", "dilate_um"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                bad(name, f"must be a positive number of µm, got {v}")
        for name in ("block_um", "neck_um", "erode_um"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                bad(name, f"must be >= 0 µm, got {v}")
        if not 0 <= self.max_overlap <= 1:
            bad("max_overlap", f"must be in [0, 1], got {self.max_overlap}")
        for name in ("objects", "tries", "points"):
            if getattr(self, name) < 1:
                bad(name, f"must be at least 1, got {getattr(self, name)}")
        if self.voxels > MAX_VOXELS:
            raise UsageError(f"a {self.extent_um:g} µm block at {'x'.join(f'{v:g}' for v in self.voxel_nm)} nm voxels has "
                             f"{self.voxels:,} voxels, more than the {MAX_VOXELS:,} that fit in memory (about 60 bytes each); "
                             "use a larger voxel size or a smaller extent")
        if min(self.voxel_nm) / 1000.0 > self.dilate_um:
            bad("voxel_nm", f"voxels of {min(self.voxel_nm):g} nm are coarser than the {self.dilate_um} µm dilation; "
                            "objects would not close into solids")
        return self

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


# the command-line option of each setting (mogen augment, mogen benchmark)
OPTIONS = dict(extent_um="--extent", voxel_nm="--voxel-size", objects="--objects", max_overlap="--max-overlap",
               block_um="--block", neck_um="--neck", view_um="--view", points="--points")


@dataclass
class Obj:
    """An object to render: surface points (µm, around its centre) and where it came from."""

    points_um: np.ndarray
    cell: str  # the cell it shows ("synthetic", "random-walk:3" for made-up ones)
    kind: str  # "real", "synthetic", or a control's name
    source: str  # e.g. "DATASET/train#123", "samples.npz#17"


@dataclass
class Volume:
    """Labels of packed objects: label ``k + 1`` is ``objects[k]`` placed at ``placements[k]``
    (``None``: no room was found for it, so the label is absent)."""

    labels: np.ndarray
    grid: Grid
    objects: list[Obj]
    placements: list[Placement | None]
    solids: list[np.ndarray | None] = field(repr=False)
    spec: VolumeSpec

    def replaced(self, slots: dict[int, Obj]) -> "Volume":
        """The same volume with ``objects[k]`` swapped for ``slots[k]`` at the same placement."""
        objects, solids = list(self.objects), list(self.solids)
        for k, obj in slots.items():
            objects[k] = obj
            if self.placements[k] is not None:
                solids[k] = points_to_solid(self.placements[k].apply(obj.points_um), self.grid,
                                            self.spec.dilate_um, self.spec.erode_um)
        return replace(self, labels=_labels(solids, self.grid), objects=objects, solids=solids)

    def metadata(self) -> dict:
        """What the volume holds (for the volume file): one record per label, and the cells."""
        present = set(np.unique(self.labels).tolist())
        objs = [dict(label=k + 1, cell=o.cell, kind=o.kind, source=o.source, present=(k + 1) in present,
                     placement=None if p is None else p.to_json())
                for k, (o, p) in enumerate(zip(self.objects, self.placements))]
        return dict(objects=objs, cells=sorted({o["cell"] for o in objs if o["present"]}), spec=self.spec.to_json())


def _labels(solids: list[np.ndarray | None], grid: Grid) -> np.ndarray:
    empty = np.zeros(grid.shape, bool)
    return pack_labels([empty if s is None else s for s in solids], grid.voxel_um)


def render_volume(objects: list[Obj], spec: VolumeSpec, seed: int) -> Volume:
    """Pack ``objects`` into one block (:func:`mogen.augment.render.pack_objects`) and label them."""
    grid = spec.grid()
    rng = np.random.default_rng(seed)
    placements, solids = pack_objects([o.points_um for o in objects], grid, rng, spec.max_overlap, spec.tries,
                                      spec.dilate_um, spec.erode_um)
    return Volume(_labels(solids, grid), grid, list(objects), placements, solids, spec)


@dataclass
class Cut:
    """A volume's over-segmentation, its merge candidates and their views."""

    supervoxels: np.ndarray
    candidates: Candidates
    views: np.ndarray  # [E, points, 3] float32


def cut_candidates(labels: np.ndarray, grid: Grid, spec: VolumeSpec, seed: int) -> Cut:
    """Over-segment ``labels`` (block offset from ``seed``), find touching supervoxels, cut their views."""
    sv = oversegment(labels, grid.voxel_um, spec.block_um, spec.neck_um, seed=seed)
    cand = find_candidates(sv, labels, grid)
    views = ViewCutter(sv, grid).views(cand.edges, cand.contact_um, spec.view_um, spec.points, seed=seed)
    return Cut(sv, cand, views)
