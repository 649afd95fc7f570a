"""Generators bundled with mogen, by name: sample without data or training.

``index.json`` beside this file lists each bundled checkpoint: its file, what it was trained
on (dataset, split, data hash), for how long, and its realism numbers. The checkpoints are
ordinary ``train.py`` checkpoints holding EMA weights only (no optimizer state), so
``python sample.py --pretrained NAME`` works right after ``pip install``.

Examples
--------
>>> names = available()
>>> all(checkpoint_path(n).is_file() for n in names)
True
"""

from __future__ import annotations

import json
from pathlib import Path

from mogen.errors import UsageError

HERE = Path(__file__).resolve().parent


def index(root: Path = HERE) -> dict[str, dict]:
    """``{name: record}`` from ``index.json`` (empty when nothing is bundled)."""
    path = Path(root) / "index.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def available(root: Path = HERE) -> list[str]:
    return sorted(index(root))


def checkpoint_path(name: str, root: Path = HERE) -> Path:
    """The bundled checkpoint file of ``name``."""
    records = index(root)
    if name not in records:
        have = ", ".join(sorted(records)) or "none in this install"
        raise UsageError(f"no bundled generator named {name!r}; available: {have}")
    path = Path(root) / records[name]["file"]
    if not path.is_file():
        raise UsageError(f"bundled generator {name!r} is listed but its file {path} is missing; reinstall mogen")
    return path


# Checkpoint keys a bundled generator keeps (no optimizer, raw weights or RNG state).
BUNDLED_KEYS = ("ema", "config", "model_type", "model_config", "step", "train_seconds", "data", "cond_bank",
                "mogen_version")


def bundle(ckpt, name: str, record: dict, max_conditions: int = 4096, seed: int = 0, root: Path = HERE) -> Path:
    """Write checkpoint ``ckpt`` as the bundled generator ``name`` and list it in ``index.json``.

    Keeps the EMA weights and what sampling needs (:data:`BUNDLED_KEYS`); the training
    conditions (noise moments and realistic conditions at sampling time) are thinned to
    ``max_conditions`` random rows. ``record`` (dataset, split, realism numbers, ...) is stored
    in the index with the file name, the data hash and the training time. A maintainer's
    tool: ``python -m mogen.pretrained NAME CKPT RECORD.json``.
    """
    import torch

    from mogen.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(ckpt)
    small = {k: state[k] for k in BUNDLED_KEYS if k in state}
    bank = small.get("cond_bank")
    if bank is not None and len(bank) > max_conditions:
        keep = torch.randperm(len(bank), generator=torch.Generator().manual_seed(seed))[:max_conditions]
        small["cond_bank"] = bank[keep.sort().values].clone()
    small["data"] = {k: v for k, v in small["data"].items() if k != "dir"}  # a path on the trainer's machine
    file = f"{name}.pt"
    root = Path(root)
    save_checkpoint(small, root / file)
    records = index(root)
    records[name] = {"file": file, "model_type": small.get("model_type"), "step": small.get("step"),
                     "train_minutes": round(small.get("train_seconds", 0.0) / 60, 1),
                     "manifest_hash": small["data"].get("manifest_hash"),
                     "train_neurons": small["data"].get("train_neurons"), **record}
    (root / "index.json").write_text(json.dumps(dict(sorted(records.items())), indent=1) + "\n")
    return root / file

