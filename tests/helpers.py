"""Small synthetic inputs shared by tests: tube fragments and datasets written through the
dataset module (the one owner of the format), so tests never hand-write its files."""

from __future__ import annotations

import numpy as np

from mogen.data.dataset import write_dataset
from mogen.data.fragments import Fragments


def tube_clouds(n: int, points: int, rng: np.random.Generator, radius=(0.03, 0.08), bend=0.0) -> np.ndarray:
    """``n`` clouds [n, points, 3] on gently curved tubes through the unit ball, random orientation."""
    s = rng.uniform(-0.9, 0.9, (n, points))
    th = rng.uniform(0, 2 * np.pi, (n, points))
    r = rng.uniform(*radius, (n, 1))
    b = rng.uniform(-bend, bend, (n, 1)) if bend else np.zeros((n, 1))
    x = np.stack([s, b * s**2 + r * np.cos(th), r * np.sin(th)], -1)
    q = np.linalg.qr(rng.normal(size=(n, 3, 3)))[0]
    return np.einsum("nij,npj->npi", q, x).astype(np.float32)


def fragments(points: np.ndarray, anchors_um: np.ndarray | None = None, neurite_type: int = 3, ends: int = 2,
              caliber: float = 0.05) -> Fragments:
    n = len(points)
    anchors = np.zeros((n, 3), np.float32) if anchors_um is None else np.asarray(anchors_um, np.float32)
    return Fragments(np.asarray(points, np.float32), anchors, np.full(n, neurite_type, np.int8),
                     np.full(n, ends, np.int32), np.full(n, caliber, np.float32), cable_um=10.0 * n, n_anchors=n, n_skipped=0)


def tube_dataset(root, per_split: dict[str, dict[str, int]], points: int = 128, seed: int = 0, radius_um: float = 10.0,
                 **manifest_fields) -> dict:
    """A dataset of tube fragments: ``per_split = {"train": {"a": 20}, "test": {"c": 8}}``."""
    rng = np.random.default_rng(seed)
    frags, splits = {}, {}
    for split, neurons in per_split.items():
        splits[split] = list(neurons)
        for nid, count in neurons.items():
            frags[nid] = fragments(tube_clouds(count, points, rng, bend=0.4))
    return write_dataset(root, frags, splits, radius_um=radius_um, **manifest_fields)


def wandb_history(run_dir) -> list[dict]:
    """The ``history`` rows of an offline wandb run (``RUN/wandb/offline-run-*``), read from its
    ``.wandb`` transaction log: a LevelDB-style log (7-byte header ``:W&B`` + magic + version,
    then 32 KiB blocks of records ``crc32c(4) length(2) type(1) data``) of protobuf ``Record``s."""
    import json
    from pathlib import Path

    from wandb.proto import wandb_internal_pb2 as pb

    (log,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    data, block, pos, pending, rows = log.read_bytes(), 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        pending += chunk
        if kind in (1, 4):  # FULL or LAST piece of a record
            rec = pb.Record()
            rec.ParseFromString(pending)
            pending = b""
            if rec.WhichOneof("record_type") == "history":
                rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item})
    return rows
