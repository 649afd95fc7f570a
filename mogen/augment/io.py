"""Label volumes on disk (zarr or HDF5): the one reader and writer.

Layout, the same in both formats::

    labels       uint64 [z, y, x]   ground-truth objects, 0 = background
    supervoxels  uint64 [z, y, x]   (optional) the over-segmentation the benchmark agglomerates
    raw          uint8  [z, y, x]   (optional) EM-like image for segmentation training
    attrs on each array:  resolution [z, y, x] nm, offset [z, y, x] nm,
                          voxel_size [z, y, x] nm, axis_names ["z", "y", "x"], units ["nm", ...]
    file attribute "mogen": JSON record of what the volume holds (objects and their cells,
                            how it was made)

``resolution``/``offset`` are what gunpowder's ``ZarrSource``/``Hdf5Source`` read;
PyTorch Connectomics reads an HDF5 dataset by name (``raw`` / ``labels``) with its resolution
set in the config. zarr is written in format 2, which both zarr 2 and zarr 3 readers open.

Examples
--------
>>> import numpy as np, tempfile, os
>>> d = tempfile.mkdtemp()
>>> lab = np.ones((2, 3, 4), np.uint64)
>>> p = write_volume(os.path.join(d, "v.zarr"), lab, voxel_nm=(40, 8, 8), metadata={"cells": ["a"]})
>>> vol = read_volume(p); vol["labels"].shape, vol["attrs"]["resolution"], vol["metadata"]["cells"], vol["raw"]
((2, 3, 4), [40.0, 8.0, 8.0], ['a'], None)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from mogen.errors import UsageError, VolumeError
from mogen.outputs import atomic_path

FORMATS = {".zarr": "zarr", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5"}
ARRAYS = ("labels", "supervoxels", "raw")


def volume_format(path) -> str:
    """``"zarr"`` or ``"hdf5"`` from the path's extension; :class:`UsageError` for any other."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: unsupported volume format {Path(path).suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(sorted(FORMATS))}")
    return fmt


def _attrs(voxel_nm, offset_nm) -> dict:
    voxel = [float(v) for v in voxel_nm]
    return dict(resolution=voxel, voxel_size=voxel, offset=[float(v) for v in offset_nm], axis_names=["z", "y", "x"],
                units=["nm", "nm", "nm"])


def write_volume(path, labels: np.ndarray, voxel_nm, offset_nm=(0.0, 0.0, 0.0), raw: np.ndarray | None = None,
                 supervoxels: np.ndarray | None = None, metadata: dict | None = None, overwrite: bool = False) -> Path:
    """Write a volume to ``path`` (``.zarr`` directory or ``.h5``/``.hdf5`` file).

    ``metadata`` (JSON-serialisable) is stored as the file attribute ``mogen``. Refuses to
    replace an existing path unless ``overwrite``, and even then unless it is a volume written
    here (:func:`check_replaceable`). Written under a temporary name and renamed into place.
    """
    path = Path(path)
    fmt = volume_format(path)
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be 3D [z, y, x], got shape {labels.shape}")
    if not (len(voxel_nm) == 3 and all(np.isfinite(v) and v > 0 for v in voxel_nm)):
        raise ValueError(f"voxel size must be three positive numbers (nm, z y x), got {voxel_nm}")
    arrays = {"labels": labels.astype(np.uint64)}
    for name, data, dtype in (("supervoxels", supervoxels, np.uint64), ("raw", raw, np.uint8)):
        if data is not None:
            if np.shape(data) != labels.shape:
                raise ValueError(f"{name} {np.shape(data)} and labels {labels.shape} must have the same shape")
            arrays[name] = np.asarray(data).astype(dtype)
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
        check_replaceable(path)
    attrs = _attrs(voxel_nm, offset_nm)
    record = json.loads(json.dumps(metadata or {}))
    chunks = tuple(min(s, c) for s, c in zip(labels.shape, (64, 128, 128)))
    with atomic_path(path) as tmp:  # a full disk or a crash leaves no half-written volume
        if fmt == "zarr":
            import zarr

            root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
            for name, data in arrays.items():
                arr = root.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks)
                arr[...] = data
                arr.attrs.update(attrs)
            root.attrs["mogen"] = record
        else:
            import h5py

            with h5py.File(tmp, "w") as f:
                for name, data in arrays.items():
                    ds = f.create_dataset(name, data=data, chunks=chunks, compression="gzip", compression_opts=4)
                    for k, v in attrs.items():
                        ds.attrs[k] = v
                f.attrs["mogen"] = json.dumps(record)
    return path


_ZARR_META = {".zgroup", ".zattrs", ".zarray", ".zmetadata"}
_CHUNK = re.compile(r"\d+([./]\d+)*")


def foreign_entries(path) -> list[str]:
    """Why ``path`` is not a volume of :func:`write_volume` (empty: it is one of ours).

    A zarr store may hold only its metadata and the arrays ``labels``, ``supervoxels``, ``raw``
    (their metadata and chunk files), with the ``mogen`` record; an HDF5 file must carry the
    ``mogen`` attribute. Files that do not belong are named, relative to ``path``.
    """
    path = Path(path)
    if volume_format(path) == "zarr":
        if not path.is_dir():
            return ["a file, not a zarr folder"]
        foreign = []
        for f in sorted(path.iterdir()):
            if f.name in _ZARR_META and f.is_file():
                continue
            if f.name in ARRAYS and f.is_dir():
                foreign += [f"{f.name}/{g.name}" for g in sorted(f.iterdir())
                            if not ((g.name in _ZARR_META or _CHUNK.fullmatch(g.name)) and g.is_file())]
                continue
            foreign.append(f.name + ("/" if f.is_dir() else ""))
        try:
            ours = "mogen" in json.loads((path / ".zattrs").read_text())
        except (OSError, ValueError):
            ours = False
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        return ([f"it holds {shown}"] if foreign else []) + ([] if ours else ["no mogen record in .zattrs"])
    if not path.is_file():
        return ["a folder, not an HDF5 file"]
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return [] if "mogen" in f.attrs else ["no mogen attribute"]
    except Exception:  # not HDF5 at all
        return ["not an HDF5 file"]


def check_replaceable(path) -> None:
    """Refuse to replace ``path`` unless it is a volume :func:`write_volume` wrote (see
    :func:`foreign_entries`); raises :class:`UsageError` saying why."""
    why = foreign_entries(path)
    if why:
        raise UsageError(f"{path} is not a volume written by mogen ({'; '.join(why)}); --overwrite replaces only "
                         "mogen's own volumes: move it away or choose another --out")


def read_volume(path) -> dict:
    """``{"labels", "supervoxels" (or None), "raw" (or None), "attrs" (of labels), "metadata"}``.

    Raises :class:`mogen.errors.VolumeError` for a missing, unreadable or malformed volume.
    """
    path = Path(path)
    fmt = volume_format(path)
    if not path.exists():
        raise VolumeError(path, "", "no such volume (write one with `mogen augment render`)")
    try:
        if fmt == "zarr":
            import zarr

            root = zarr.open_group(str(path), mode="r")
            names = set(root.array_keys())
            if "labels" not in names:
                raise VolumeError(path, "", f"no 'labels' array (arrays: {sorted(names)})")
            out = {n: (root[n][...] if n in names else None) for n in ARRAYS}
            attrs, record = dict(root["labels"].attrs), root.attrs.get("mogen", {})
        else:
            import h5py

            with h5py.File(path, "r") as f:
                if "labels" not in f:
                    raise VolumeError(path, "", f"no 'labels' dataset (datasets: {sorted(f.keys())})")
                out = {n: (f[n][...] if n in f else None) for n in ARRAYS}
                attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f["labels"].attrs.items()}
                attrs = {k: ([x.decode() if isinstance(x, bytes) else x for x in v] if isinstance(v, list) else v)
                         for k, v in attrs.items()}
                record = json.loads(f.attrs["mogen"]) if "mogen" in f.attrs else {}
    except VolumeError:
        raise
    except Exception as exc:  # zarr/h5py raise many types for a damaged store
        raise VolumeError(path, "", f"unreadable volume ({type(exc).__name__}: {exc})") from None
    if out["labels"].ndim != 3:
        raise VolumeError(path, "labels", f"shape {out['labels'].shape}, expected 3D [z, y, x]")
    return dict(out, attrs=attrs, metadata=record)
