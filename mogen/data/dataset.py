"""The dataset directory on disk, and the loader that feeds training from it.

Layout (see the repo's common contract)::

    DIR/manifest.json
    DIR/<split>/points.npy      float32 [F, N, 3] unit-ball points (memory-mapped when read)
    DIR/<split>/fragments.npz   anchor_um [F,3] f4, neuron_id [F] str, neurite_type [F] i1, mst_leaves [F] i4

The loader fetches whole batches (one fancy-index read of the memmap), rotates them with
uniform random rotations in torch and computes the condition vector after augmentation, so
centroid and covariance match the rotated points.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

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
    ...                np.array([2, 3], np.int8), np.array([3, 4], np.int32), 30.0, 2, 0)
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
        path = self.out / _CHUNKS / f"{len(self.chunks):06d}.npz"
        np.savez(path, points=fragments.points, anchor_um=fragments.anchor_um,
                 neurite_type=fragments.neurite_type, mst_leaves=fragments.mst_leaves)
        self.chunks[str(neuron_id)] = path

    def finish(self, splits: dict[str, list[str]]) -> dict[str, int]:
        """Write ``<split>/points.npy`` and ``fragments.npz``; returns fragment counts."""
        counts = {}
        for split in SPLITS:
            ids = splits.get(split, [])
            metas = [dict(np.load(self.chunks[i])) for i in ids]
            total = sum(len(m["points"]) for m in metas)
            d = self.out / split
            d.mkdir(parents=True, exist_ok=True)
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
                mst_leaves=cat("mst_leaves", np.int32, (0,)),
            )
            counts[split] = total
        shutil.rmtree(self.out / _CHUNKS, ignore_errors=True)
        return counts


def write_manifest(out, manifest: dict) -> None:
    manifest = {"format": FORMAT, **manifest, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (Path(out) / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


# ---------------------------------------------------------------------------- reading
def read_manifest(root) -> dict:
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{root}: no manifest.json; is this a dataset made by `mogen prepare`?")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def manifest_hash(dataset_dir) -> str:
    """sha256 of the canonical JSON of the manifest's ``splits``, ``radius_um``, ``points_per_fragment``."""
    m = read_manifest(dataset_dir)
    key = {k: m[k] for k in ("splits", "radius_um", "points_per_fragment")}
    return hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def random_rotations(n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
    """``n`` uniform random 3D rotation matrices [n, 3, 3] (normalised Gaussian quaternions).

    Examples
    --------
    >>> R = random_rotations(4, torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(4, 3, 3), atol=1e-5))
    True
    """
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    R = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], 1).reshape(n, 3, 3)
    return R.to(dtype)


class FragmentDataset(torch.utils.data.Dataset):
    """Fragments of one split, with optional rotation / jitter augmentation.

    ``ds[i]`` gives ``dict(points [N,3], cond [14], neurite_type [], mst_leaves [], index)``;
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
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.root, self.split = Path(root), split
        self.manifest = read_manifest(root)
        self.points = np.load(self.root / split / "points.npy", mmap_mode="r")
        with np.load(self.root / split / "fragments.npz") as meta:
            self.anchor_um = meta["anchor_um"]
            self.neuron_id = meta["neuron_id"]
            self.neurite_type = torch.from_numpy(meta["neurite_type"].astype(np.int64))
            self.mst_leaves = torch.from_numpy(meta["mst_leaves"].astype(np.int64))
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
        types, leaves = self.neurite_type[t], self.mst_leaves[t]
        return {"points": pts, "cond": condition_vector(pts, types, leaves), "neurite_type": types,
                "mst_leaves": leaves, "index": t}

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
