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


def index() -> dict[str, dict]:
    """``{name: record}`` from ``index.json`` (empty when nothing is bundled)."""
    path = HERE / "index.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def available() -> list[str]:
    return sorted(index())


def checkpoint_path(name: str) -> Path:
    """The bundled checkpoint file of ``name``."""
    records = index()
    if name not in records:
        have = ", ".join(sorted(records)) or "none in this install"
        raise UsageError(f"no bundled generator named {name!r}; available: {have}")
    path = HERE / records[name]["file"]
    if not path.is_file():
        raise UsageError(f"bundled generator {name!r} is listed but its file {path} is missing; reinstall mogen")
    return path
