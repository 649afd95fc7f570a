"""``samples.npz``: generated fragments and where they came from. The one reader and writer.

Layout::

    points       float32 [n, N, 3]   in µm around the crop anchor (units "um") or unit-ball
                                     coordinates (units "unit")
    units        "um" | "unit"
    radius_um    crop radius R: unit-ball coordinates = µm / R
    cond         float32 [n, 15]     condition vectors given to the network (zeros where masked)
    cond_mask    bool [n, 4]         which condition groups were given
    neurite_type int8 [n]
    provenance   JSON: how the samples were made (see :class:`Samples`)

Provenance keys written by ``sample.py``: ``format``, ``mogen_version``, ``created``,
``checkpoint``, ``pretrained`` (bundled generator name or null), ``model_type``, ``step``,
``manifest_hash`` and ``dataset`` (what the generator was trained on), ``train_neurons`` and
``train_cells``, ``source`` (noise at t = 0), ``source_split`` (where noise moments came from),
``cond`` (the ``--cond`` spec), ``cond_split`` (split the conditions were drawn from, or null),
``cond_groups``, ``solver``, ``steps``, ``nfe``, ``grid``, ``guidance``, ``seed``, ``weights``,
``knn_every``, ``clip_ball``.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "samples.npz"
>>> pts = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 64, 3)).astype(np.float32)
>>> _ = write_samples(path, pts * 10, radius_um=10.0, provenance={"solver": "midpoint", "clip_ball": False})
>>> s = read_samples(path)
>>> s.points_unit.shape, s.provenance["solver"], round(float(np.abs(s.points_unit - pts).max()), 6)
((2, 64, 3), 'midpoint', 0.0)
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mogen.errors import SamplesError
from mogen.outputs import atomic_path

FORMAT = "mogen-samples/1"
UNITS = ("um", "unit")
# Keys older files stored as separate scalar arrays before provenance was one JSON record.
_LEGACY_KEYS = ("checkpoint", "solver", "steps", "nfe", "guidance", "seed", "manifest_hash", "train_neurons", "grid",
                "weights", "clip_ball", "knn_every")


@dataclass
class Samples:
    """Generated clouds with their provenance (see the module docstring)."""

    points_unit: np.ndarray  # float32 [n, N, 3], unit-ball coordinates
    radius_um: float
    provenance: dict
    cond: np.ndarray | None = None
    cond_mask: np.ndarray | None = None
    neurite_type: np.ndarray | None = None
    path: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.points_unit)

    @property
    def points_um(self) -> np.ndarray:
        return self.points_unit * np.float32(self.radius_um)

    @property
    def train_neurons(self) -> list[str] | None:
        """The neurons (files) the generator was trained on, or None if not recorded."""
        v = self.provenance.get("train_neurons")
        return None if v is None else [str(x) for x in v]

    @property
    def train_cells(self) -> list[str] | None:
        """The cells the generator was trained on (groups of files), or None if not recorded."""
        v = self.provenance.get("train_cells")
        return None if v is None else [str(x) for x in v]


def write_samples(path, points: np.ndarray, radius_um: float, provenance: dict, units: str = "um",
                  cond: np.ndarray | None = None, cond_mask: np.ndarray | None = None,
                  neurite_type: np.ndarray | None = None) -> Path:
    """Write ``samples.npz`` atomically (a temporary file renamed into place).

    ``points`` are in ``units``: µm around the anchor, or the unit ball.
    """
    path = Path(path)
    pts = np.asarray(points, dtype=np.float32)
    _check_points(pts, path)
    if units not in UNITS:
        raise SamplesError(path, "units", f"{units!r} is not one of {UNITS}")
    if not (np.isfinite(radius_um) and radius_um > 0):
        raise SamplesError(path, "radius_um", f"must be a positive number, got {radius_um}")
    n = len(pts)
    arrays = dict(points=pts, units=np.str_(units), radius_um=np.float64(radius_um))
    for name, arr, dtype in (("cond", cond, np.float32), ("cond_mask", cond_mask, bool), ("neurite_type", neurite_type, np.int8)):
        if arr is not None:
            arr = np.asarray(arr, dtype=dtype)
            if len(arr) != n:
                raise SamplesError(path, name, f"has {len(arr)} rows for {n} samples")
            arrays[name] = arr
    from mogen import __version__

    prov = {"format": FORMAT, "mogen_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance}
    arrays["provenance"] = np.str_(json.dumps(prov, default=_jsonable))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, needed=sum(np.asarray(a).nbytes for a in arrays.values())) as tmp:
        np.savez(tmp, **arrays)
    return path


def is_samples_file(path) -> bool:
    """Whether ``path`` is a samples file that mogen wrote (readable npz with points and provenance)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "points" in z.files and ("provenance" in z.files or "radius_um" in z.files)
    except Exception:  # not an npz at all
        return False


def read_samples(path, radius_um: float | None = None, points_per_cloud: int | None = None) -> Samples:
    """Read and check ``samples.npz``; optionally require a crop radius and a point count.

    Raises :class:`mogen.errors.SamplesError` naming the file and the problem: missing,
    not a zip/npz (e.g. truncated), no ``points``, wrong shape, NaN/inf, unknown units, a
    radius or point count that differs from the one asked for.
    """
    path = Path(path)
    if not path.is_file():
        raise SamplesError(path, "", "no such file (write one with sample.py or mogen sample)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SamplesError(path, "", f"not a readable .npz (truncated or corrupt?): {exc}") from None
    if "points" not in data:
        raise SamplesError(path, "", f"no 'points' array (keys: {sorted(data)}); expected a samples.npz written by sample.py")
    pts = data["points"]
    _check_points(pts, path)
    units = str(data.get("units", "um"))
    if units not in UNITS:
        raise SamplesError(path, "units", f"unknown units {units!r} (expected one of {UNITS})")
    if "provenance" in data:
        try:
            prov = json.loads(str(data["provenance"]))
        except json.JSONDecodeError as exc:
            raise SamplesError(path, "provenance", f"not valid JSON ({exc})") from None
    else:  # files written before provenance was one record
        prov = {k: _scalar(data[k]) for k in _LEGACY_KEYS if k in data}
        if isinstance(prov.get("train_neurons"), str):
            prov["train_neurons"] = json.loads(prov["train_neurons"])
    r = float(data["radius_um"]) if "radius_um" in data else None
    if r is None:
        if units == "um":
            raise SamplesError(path, "radius_um", "points are in µm but the file has no radius_um to bring them to the unit ball")
        r = radius_um
    if r is not None and not (np.isfinite(r) and r > 0):
        raise SamplesError(path, "radius_um", f"must be a positive number, got {r}")
    if radius_um is not None and r is not None and not np.isclose(r, radius_um, rtol=1e-6):
        raise SamplesError(path, "radius_um", f"samples were made with crop radius {r} µm but {radius_um} µm is expected "
                                              "(shape features are not comparable across radii)")
    if points_per_cloud is not None and pts.shape[1] != points_per_cloud:
        raise SamplesError(path, "points", f"{pts.shape[1]} points per cloud, expected {points_per_cloud} "
                                           "(shape features depend on the point count)")
    unit = pts.astype(np.float32) / np.float32(r) if units == "um" else pts.astype(np.float32)
    n = len(pts)
    opt = {}
    for name in ("cond", "cond_mask", "neurite_type"):
        if name in data:
            if len(data[name]) != n:
                raise SamplesError(path, name, f"has {len(data[name])} rows for {n} samples")
            opt[name] = data[name]
    extra = {k: v for k, v in data.items() if k not in {"points", "units", "radius_um", "provenance", *opt, *_LEGACY_KEYS}}
    return Samples(unit, float(r) if r is not None else float("nan"), prov, path=str(path), extra=extra, **opt)


def _check_points(pts: np.ndarray, path: Path) -> None:
    if pts.ndim != 3 or pts.shape[-1] != 3 or len(pts) == 0 or pts.shape[1] < 2:
        raise SamplesError(path, "points", f"shape {pts.shape}, expected [n, N, 3] with n >= 1 and N >= 2")
    finite = np.isfinite(pts).all(axis=(1, 2))
    if not finite.all():
        raise SamplesError(path, "points", f"{int((~finite).sum())} of {len(pts)} clouds contain NaN/inf "
                                           f"(first: index {int(np.argmin(finite))})")


def _scalar(v: np.ndarray):
    return v.item() if v.ndim == 0 else v.tolist()


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (np.ndarray,)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
