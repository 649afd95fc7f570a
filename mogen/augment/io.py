"""Write (and read back) raw + label volumes as zarr or HDF5 for segmentation training tools.

Layout, the same in both formats::

    raw      uint8  [z, y, x]
    labels   uint64 [z, y, x]   0 = background
    attrs on each array:  resolution [z, y, x] nm, offset [z, y, x] nm,
                          voxel_size [z, y, x] nm, axis_names ["z", "y", "x"], units ["nm", ...]

``resolution``/``offset`` are what gunpowder's ``ZarrSource``/``Hdf5Source`` read;
PyTorch Connectomics reads an HDF5 dataset by name (``raw`` / ``labels``) with its resolution
set in the config. zarr is written in format 2, which both zarr 2 and zarr 3 readers open.

Examples
--------
>>> import numpy as np, tempfile, os
>>> d = tempfile.mkdtemp()
>>> raw, lab = np.zeros((2, 3, 4), np.uint8), np.ones((2, 3, 4), np.uint64)
>>> p = write_volume(os.path.join(d, "v.zarr"), raw, lab, voxel_nm=(40, 8, 8))
>>> vol = read_volume(p); vol["labels"].shape, vol["attrs"]["resolution"]
((2, 3, 4), [40.0, 8.0, 8.0])
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

FORMATS = {".zarr": "zarr", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5"}


def _attrs(voxel_nm, offset_nm, extra: dict | None) -> dict:
    voxel = [float(v) for v in voxel_nm]
    a = dict(resolution=voxel, voxel_size=voxel, offset=[float(v) for v in offset_nm], axis_names=["z", "y", "x"],
             units=["nm", "nm", "nm"])
    if extra:
        a.update(extra)
    return a


def write_volume(path, raw: np.ndarray, labels: np.ndarray, voxel_nm, offset_nm=(0.0, 0.0, 0.0),
                 metadata: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``raw`` and ``labels`` to ``path`` (``.zarr`` directory or ``.h5``/``.hdf5`` file).

    ``metadata`` (JSON-serialisable) is stored as file-level attributes. Refuses to replace an
    existing path unless ``overwrite``.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown volume format {path.suffix!r}; use one of {sorted(FORMATS)}")
    if raw.shape != labels.shape or raw.ndim != 3:
        raise ValueError(f"raw {raw.shape} and labels {labels.shape} must be the same 3D [z, y, x] shape")
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    attrs = _attrs(voxel_nm, offset_nm, None)
    top = {k: json.loads(json.dumps(v)) for k, v in (metadata or {}).items()}
    raw = np.asarray(raw, np.uint8)
    labels = np.asarray(labels).astype(np.uint64)
    chunks = tuple(min(s, c) for s, c in zip(raw.shape, (32, 128, 128)))
    if fmt == "zarr":
        import zarr

        root = zarr.open_group(str(path), mode="w", zarr_format=2)
        for name, data in (("raw", raw), ("labels", labels)):
            arr = root.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks)
            arr[...] = data
            arr.attrs.update(attrs)
        root.attrs.update(top)
    else:
        import h5py

        with h5py.File(path, "w") as f:
            for name, data in (("raw", raw), ("labels", labels)):
                ds = f.create_dataset(name, data=data, chunks=chunks, compression="gzip", compression_opts=4)
                for k, v in attrs.items():
                    ds.attrs[k] = v
            for k, v in top.items():
                f.attrs[k] = json.dumps(v) if isinstance(v, (dict, list)) else v
    return path


def read_volume(path) -> dict:
    """``{"raw", "labels", "attrs" (of labels), "metadata" (file-level)}`` from a written volume."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None or not path.exists():
        raise FileNotFoundError(f"{path}: not a .zarr/.h5 volume written by mogen augment render")
    if fmt == "zarr":
        import zarr

        root = zarr.open_group(str(path), mode="r")
        return dict(raw=root["raw"][...], labels=root["labels"][...], attrs=dict(root["labels"].attrs),
                    metadata=dict(root.attrs))
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f["labels"].attrs.items()}
        attrs = {k: ([x.decode() if isinstance(x, bytes) else x for x in v] if isinstance(v, list) else v) for k, v in attrs.items()}
        return dict(raw=f["raw"][...], labels=f["labels"][...], attrs=attrs, metadata=dict(f.attrs))
