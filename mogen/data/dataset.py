"""The dataset directory on disk, and the loader that feeds training from it.

Layout (see the repo's common contract)::

    DIR/manifest.json
    DIR/<split>/points.npy      float32 [F, N, 3] unit-ball points (memory-mapped when read)
    DIR/<split>/fragments.npz   anchor_um [F,3] f4, neuron_id [F] str, neurite_type [F] i1,
                                cable_ends [F] i4, caliber [F] f4 (tube radius at the anchor / R)

The loader fetches whole batches (one fancy-index read of the memmap), rotates them with
uniform random rotations in torch and computes the condition vector after augmentation, so
centroid and covariance match the rotated points.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from mogen.errors import DatasetError, UsageError
from mogen.geometry import random_rotations
from mogen.outputs import atomic_path, check_space

from .conditions import condition_vector
from .split import SPLITS

FORMAT = "mogen-fragments/1"
_CHUNKS = ".chunks"


# ---------------------------------------------------------------------------- writing
class DatasetWriter:
    """Collects fragments neuron by neuron (spilling to disk) and writes the split files.

    Examples
    --------
    >>> import tempfile
    >>> from mogen.data.fragments import Fragments
    >>> d = tempfile.mkdtemp()
    >>> w = DatasetWriter(d, points_per_fragment=8)
    >>> fr = Fragments(np.zeros((2, 8, 3), np.float32), np.zeros((2, 3), np.float32),
    ...                np.array([2, 3], np.int8), np.array([2, 3], np.int32), np.array([0.03, 0.05], np.float32), 30.0, 2, 0)
    >>> w.add("a", fr)
    >>> counts = w.finish({"train": ["a"], "val": [], "test": []})
    >>> counts, np.load(f"{d}/train/points.npy", mmap_mode="r").shape
    ({'train': 2, 'val': 0, 'test': 0}, (2, 8, 3))
    """

    def __init__(self, out, points_per_fragment: int):
        self.out = Path(out)
        self.n = int(points_per_fragment)
        self.chunks: dict[str, Path] = {}
        (self.out / _CHUNKS).mkdir(parents=True, exist_ok=True)

    def add(self, neuron_id: str, fragments) -> None:
        """Spill one neuron's fragments to disk (an OSError of writing: :class:`mogen.errors.OutputError`)."""
        path = self.out / _CHUNKS / f"{len(self.chunks):06d}.npz"
        arrays = dict(points=fragments.points, anchor_um=fragments.anchor_um, neurite_type=fragments.neurite_type,
                      cable_ends=fragments.cable_ends, caliber=fragments.caliber)
        needed = sum(np.asarray(a).nbytes for a in arrays.values())
        with atomic_path(path, needed=needed) as tmp:
            np.savez(tmp, **arrays)
        self.chunks[str(neuron_id)] = path

    def finish(self, splits: dict[str, list[str]]) -> dict[str, int]:
        """Write ``<split>/points.npy`` and ``fragments.npz``; returns fragment counts.

        A file system without room for a split's points is refused before it is written
        (:class:`mogen.errors.OutputError` with the bytes needed and free)."""
        counts = {}
        for split in SPLITS:
            ids = splits.get(split, [])
            metas = [dict(np.load(self.chunks[i])) for i in ids]
            total = sum(len(m["points"]) for m in metas)
            d = self.out / split
            d.mkdir(parents=True, exist_ok=True)
            check_space(d / "points.npy", total * self.n * 3 * 4)
            pts = np.lib.format.open_memmap(d / "points.npy", mode="w+", dtype=np.float32, shape=(total, self.n, 3))
            k = 0
            for m in metas:
                pts[k:k + len(m["points"])] = m["points"]
                k += len(m["points"])
            pts.flush()
            del pts
            cat = lambda key, dt, shape: np.concatenate([m[key] for m in metas]).astype(dt) if metas else np.zeros(shape, dt)
            np.savez(
                d / "fragments.npz",
                anchor_um=cat("anchor_um", np.float32, (0, 3)),
                neuron_id=np.array([i for i, m in zip(ids, metas) for _ in range(len(m["points"]))], dtype=np.str_).reshape(-1),
                neurite_type=cat("neurite_type", np.int8, (0,)),
                cable_ends=cat("cable_ends", np.int32, (0,)),
                caliber=cat("caliber", np.float32, (0,)),
            )
            counts[split] = total
        shutil.rmtree(self.out / _CHUNKS, ignore_errors=True)
        return counts


def write_manifest(out, manifest: dict) -> None:
    manifest = {"format": FORMAT, **manifest, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (Path(out) / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def write_dataset(out, fragments: dict, splits: dict[str, list[str]], radius_um: float, **manifest_fields) -> dict:
    """Write a whole dataset directory from ``{neuron_id: Fragments}`` and ``{split: [neuron ids]}``.

    For tools and tests that already hold fragments in memory; ``mogen prepare`` streams
    through :class:`DatasetWriter` instead. ``manifest_fields`` (e.g. ``neurons``, ``cells``)
    go into ``manifest.json``. Returns the manifest.

    Examples
    --------
    >>> import tempfile
    >>> from mogen.data.fragments import Fragments
    >>> fr = Fragments(np.zeros((2, 8, 3), np.float32), np.zeros((2, 3), np.float32),
    ...                np.array([2, 3], np.int8), np.array([2, 3], np.int32), np.array([0.03, 0.05], np.float32), 30.0, 2, 0)
    >>> d = tempfile.mkdtemp()
    >>> m = write_dataset(d, {"a": fr, "b": fr}, {"train": ["a"], "val": [], "test": ["b"]}, radius_um=10.0)
    >>> len(read_split(d, "test")), m["splits"]["train"]["neurons"]
    (2, ['a'])
    """
    points = {len(f.points[0]) for f in fragments.values()}
    if len(points) != 1:
        raise ValueError(f"fragments of different point counts {sorted(points)}")
    writer = DatasetWriter(out, points.pop())
    for nid, fr in fragments.items():
        writer.add(nid, fr)
    splits = {s: list(splits.get(s, [])) for s in SPLITS}
    counts = writer.finish(splits)
    manifest = {"radius_um": float(radius_um), "points_per_fragment": writer.n, "units": "um",
                "splits": {s: {"neurons": splits[s], "fragments": counts[s]} for s in SPLITS},
                "neurons": [], "failed": [], **manifest_fields}
    write_manifest(out, manifest)
    return read_manifest(out)


# ---------------------------------------------------------------------------- reading
_REQUIRED = ("radius_um", "points_per_fragment", "splits")


def read_manifest(root) -> dict:
    """The dataset's ``manifest.json``, checked (format, required keys, splits).

    Raises :class:`mogen.errors.DatasetError` naming the file and what is wrong.
    """
    root = Path(root)
    path = root / "manifest.json"
    if not root.is_dir():
        raise DatasetError(root, "", "no such dataset directory (make one with `mogen prepare`)")
    if not path.is_file():
        raise DatasetError(root, "", "no manifest.json: not a dataset made by `mogen prepare`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(path, "", f"not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise DatasetError(path, "format", f"{found!r}, expected {FORMAT!r}")
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise DatasetError(path, "", f"missing keys {missing}")
    bad = [s for s in SPLITS if not isinstance(manifest["splits"].get(s), dict) or "neurons" not in manifest["splits"][s]]
    if bad:
        raise DatasetError(path, "splits", f"split(s) {bad} missing or without a 'neurons' list")
    if "cells" in manifest:
        _check_cells(manifest, path)
    return manifest


def _check_cells(manifest: dict, path) -> None:
    """Cell groups (``mogen prepare`` since the split by cell): consistent, and no cell in two splits."""
    groups = manifest["cells"]
    if not isinstance(groups, dict) or not all(isinstance(g, dict) and isinstance(g.get("files"), list) for g in groups.values()):
        raise DatasetError(path, "cells", "must map cell ids to {'files': [...], 'reasons': [...]}")
    listed = {str(f): str(c) for c, g in groups.items() for f in g["files"]}
    cells = cell_of(manifest)
    for nid, cell in cells.items():
        if listed.get(nid, cell) != cell or (nid not in listed and cell not in groups):
            raise DatasetError(path, "cells", f"neuron {nid!r} has cell {cell!r}, but 'cells' lists it under {listed.get(nid)!r}")
    seen: dict[str, str] = {}
    for s in SPLITS:
        mine = {cells[str(n)] for n in manifest["splits"][s]["neurons"]}
        for c in mine:
            if seen.setdefault(c, s) != s:
                raise DatasetError(path, "cells", f"cell {c!r} has files in both the {seen[c]} and the {s} split")
        if "cells" in manifest["splits"][s] and set(map(str, manifest["splits"][s]["cells"])) != mine:
            raise DatasetError(path, f"splits.{s}.cells", "does not match the cells of the split's neurons")


@dataclass
class Split:
    """One split of a dataset: fragments (memory-mapped) and their per-fragment metadata."""

    root: Path
    name: str
    manifest: dict
    points: np.ndarray  # float32 [F, N, 3] unit ball, memmap
    anchor_um: np.ndarray  # float32 [F, 3]
    neuron_id: np.ndarray  # str [F]
    neurite_type: np.ndarray  # int8 [F]
    cable_ends: np.ndarray  # int32 [F]
    caliber: np.ndarray  # float32 [F], r/R

    def __len__(self) -> int:
        return len(self.points)

    @property
    def radius_um(self) -> float:
        return float(self.manifest["radius_um"])

    @property
    def neurons(self) -> list[str]:
        return list(self.manifest["splits"][self.name]["neurons"])


def read_split(root, split: str) -> Split:
    """Open ``root/<split>`` (points memory-mapped) and check it against the manifest."""
    manifest = read_manifest(root)
    if split not in SPLITS:
        raise DatasetError(root, "split", f"{split!r} is not one of {SPLITS}")
    d = Path(root) / split
    pts_path, meta_path = d / "points.npy", d / "fragments.npz"
    for p in (pts_path, meta_path):
        if not p.is_file():
            raise DatasetError(p, "", f"missing (the manifest lists split {split!r}); re-run `mogen prepare`")
    try:
        points = np.load(pts_path, mmap_mode="r")
        with np.load(meta_path) as z:
            meta = {k: z[k] for k in ("anchor_um", "neuron_id", "neurite_type", "cable_ends", "caliber")}
    except KeyError as exc:
        raise DatasetError(meta_path, "", f"no array {exc}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(d, "", f"unreadable split files (truncated or corrupt?): {exc}") from None
    n_pts = int(manifest["points_per_fragment"])
    if points.ndim != 3 or points.shape[1:] != (n_pts, 3) or points.dtype != np.float32:
        raise DatasetError(pts_path, "", f"shape {points.shape} {points.dtype}, expected float32 [F, {n_pts}, 3]")
    bad = [k for k, v in meta.items() if len(v) != len(points)]
    if bad:
        raise DatasetError(meta_path, "", f"{bad} have a different row count than the {len(points)} fragments")
    expected = manifest["splits"][split].get("fragments")
    if expected is not None and int(expected) != len(points):
        raise DatasetError(pts_path, "", f"{len(points)} fragments but the manifest says {expected}")
    return Split(Path(root), split, manifest, points, meta["anchor_um"], meta["neuron_id"].astype(str),
                 meta["neurite_type"], meta["cable_ends"], meta["caliber"])


def manifest_hash(dataset_dir) -> str:
    """sha256 of the canonical JSON of the manifest's ``splits``, ``radius_um``, ``points_per_fragment``."""
    m = read_manifest(dataset_dir)
    key = {k: m[k] for k in ("splits", "radius_um", "points_per_fragment")}
    return hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def cell_of(manifest: dict) -> dict[str, str]:
    """Neuron (file) id -> cell id. Files of one cell share a cell id; a manifest without
    cell groups treats every file as its own cell."""
    out = {str(n["id"]): str(n.get("cell", n["id"])) for n in manifest.get("neurons", [])}
    for s in SPLITS:
        for nid in manifest["splits"][s]["neurons"]:
            out.setdefault(str(nid), str(nid))
    return out


def split_cells(manifest: dict, splits=SPLITS) -> set[str]:
    """The cells of the given splits."""
    cells = cell_of(manifest)
    return {cells[str(n)] for s in splits for n in manifest["splits"][s]["neurons"]}


def check_generator(provenance: dict, dataset_dir, held_out=("val", "test"), allow_overlap: bool = False,
                    allow_foreign: bool = False, what: str = "the generator") -> dict:
    """Refuse a generator that saw held-out cells of this dataset, or one trained on another dataset.

    ``provenance`` is a checkpoint's ``data`` record or a samples file's provenance: it holds
    ``manifest_hash``, ``train_neurons`` and (since cell splits) ``train_cells``. A generator
    trained on a different dataset is refused unless ``allow_foreign``: its cells are then
    compared by cell id, which only catches cells named alike. Returns a summary for reports.
    Raises :class:`mogen.errors.UsageError` with the reason and the flag that overrides it.
    """
    manifest = read_manifest(dataset_dir)
    this_hash = manifest_hash(dataset_dir)
    their_hash = provenance.get("manifest_hash")
    same = their_hash == this_hash
    if not same and not allow_foreign:
        raise UsageError(
            f"{what} was trained on another dataset (manifest hash {str(their_hash)[:12]}..., {dataset_dir} has "
            f"{this_hash[:12]}...), so held-out cells cannot be checked by split; pass --allow-foreign-generator "
            "to compare cell ids instead")
    cells = cell_of(manifest)
    trained = provenance.get("train_cells")
    if trained is None:  # older records: files only
        trained = [cells.get(str(n), str(n)) for n in provenance.get("train_neurons") or []]
    held = split_cells(manifest, held_out)
    leaked = sorted(set(map(str, trained)) & held)
    if leaked and not allow_overlap:
        raise UsageError(
            f"{what} was trained on cells that are in the {'/'.join(held_out)} split of {dataset_dir}: "
            f"{leaked[:8]}{' ...' if len(leaked) > 8 else ''}; held-out scores would be meaningless "
            "(pass --allow-overlap to score anyway)")
    return {"same_dataset": same, "trained_cells": len(set(trained)), "overlap_with_held_out": leaked}


class FragmentDataset(torch.utils.data.Dataset):
    """Fragments of one split, with optional rotation / jitter augmentation.

    ``ds[i]`` gives ``dict(points [N,3], cond [15], neurite_type [], cable_ends [], caliber [], index)``;
    ``ds[list_of_indices]`` gives the same with a leading batch dimension (one memmap read).

    Parameters
    ----------
    root : dataset directory written by ``mogen prepare``.
    split : "train", "val" or "test".
    rotate : apply a uniform random 3D rotation per fragment.
    jitter : std of Gaussian noise added to every point (unit-ball units).
    seed : seed of the augmentation generator (None: torch's global RNG).
    """

    def __init__(self, root, split: str = "train", rotate: bool = False, jitter: float = 0.0, seed: int | None = None):
        sp = read_split(root, split)
        self.root, self.split, self.manifest = Path(root), split, sp.manifest
        self.points, self.anchor_um, self.neuron_id = sp.points, sp.anchor_um, sp.neuron_id
        self.neurite_type = torch.from_numpy(sp.neurite_type.astype(np.int64))
        self.cable_ends = torch.from_numpy(sp.cable_ends.astype(np.int64))
        self.caliber = torch.from_numpy(sp.caliber.astype(np.float32))
        self.rotate, self.jitter = bool(rotate), float(jitter)
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __len__(self) -> int:
        return len(self.points)

    def batch(self, index) -> dict:
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        pts = torch.from_numpy(np.ascontiguousarray(self.points[idx]))
        if self.rotate:
            pts = pts @ random_rotations(len(idx), self.generator).transpose(1, 2)
        if self.jitter > 0:
            pts = pts + self.jitter * torch.randn(pts.shape, generator=self.generator)
        t = torch.from_numpy(idx)
        types, ends, caliber = self.neurite_type[t], self.cable_ends[t], self.caliber[t]
        return {"points": pts, "cond": condition_vector(pts, types, ends, caliber), "neurite_type": types,
                "cable_ends": ends, "caliber": caliber, "index": t}

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} out of range for {len(self)} fragments")
            b = self.batch([index % len(self)])
            out = {k: v[0] for k, v in b.items()}
            out["index"] = int(out["index"])
            return out
        return self.batch(index)


def _seed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.generator = torch.Generator().manual_seed(info.seed % 2**63)


def make_loader(root, split: str, batch_size: int, shuffle: bool = True, rotate: bool = False, jitter: float = 0.0,
                seed: int = 0, drop_last: bool = True, num_workers: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader of batched dicts (see :class:`FragmentDataset`), reproducible under ``seed``.

    Examples
    --------
    >>> loader = make_loader("data/navis", "train", batch_size=32, rotate=True)  # doctest: +SKIP
    >>> batch = next(iter(loader)); batch["points"].shape  # doctest: +SKIP
    torch.Size([32, 2048, 3])
    """
    ds = FragmentDataset(root, split, rotate=rotate, jitter=jitter, seed=seed)
    g = torch.Generator().manual_seed(seed)
    sampler = torch.utils.data.RandomSampler(ds, generator=g) if shuffle else torch.utils.data.SequentialSampler(ds)
    batches = torch.utils.data.BatchSampler(sampler, batch_size, drop_last)
    return torch.utils.data.DataLoader(ds, sampler=batches, batch_size=None, num_workers=num_workers,
                                       worker_init_fn=_seed_worker if num_workers else None, generator=g,
                                       persistent_workers=num_workers > 0)
