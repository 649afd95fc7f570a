"""Checkpoints: written atomically, read with clear errors.

A checkpoint is a ``torch.save`` dict (see the contract in DESIGN.md)::

    model, ema        state dicts of the network and its EMA (bundled generators: ema only)
    optimizer         AdamW state (absent in bundled generators)
    model_type        registered backbone name (mogen.model.MODELS)
    model_config      the backbone's config as a dict
    config            the TrainConfig as a dict
    step, train_seconds, rng, mogen_version
    data              what it was trained on: dir, manifest_hash, train_neurons, train_cells,
                      radius_um, points_per_fragment
    cond_bank         [F, 15] condition vectors of the training fragments (noise moments and
                      realistic conditions at sampling time, without the data)

It is written to a temporary file in the same folder and renamed over the old one, so
an interrupted write never leaves a truncated checkpoint behind.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ckpt.pt"
>>> save_checkpoint({"step": 3}, path)
>>> resolve_checkpoint(path.parent) == path
True
"""

from __future__ import annotations

import random
from pathlib import Path

from mogen.errors import CheckpointError
from mogen.outputs import atomic_path

import numpy as np
import torch

CHECKPOINT_NAME = "ckpt.pt"
REQUIRED_KEYS = ("ema", "config", "model_config", "step", "data")


def save_checkpoint(state: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # removed again if the disk fills
        torch.save(state, tmp)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory holding ``ckpt.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(path, "", "no checkpoint here (pass a run directory or a .pt file written by train.py)")
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load and validate a checkpoint written by train.py."""
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated / not a torch file
        raise CheckpointError(path, "", f"not a readable checkpoint (truncated or corrupt?): {type(e).__name__}: {e}") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        have = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(path, "", f"not a mogen checkpoint: expected keys {REQUIRED_KEYS}, found {have}")
    state["path"] = str(path)
    return state


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
