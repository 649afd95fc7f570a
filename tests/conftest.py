"""Shared test fixtures.

Tests that read ``../shared/data`` (real neurons from many labs) skip with a reason when
that folder is absent, as it is in a user's clone; CI has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# ../shared/data beside the clone (CI), or wherever MOGEN_SHARED_DATA points (e.g. from a git worktree)
SHARED_DATA = Path(os.environ.get("MOGEN_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")

# Tests are small; more threads than cores only adds contention.
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-neuron data not found at {SHARED_DATA} (only present beside CI's clone; "
                    "set MOGEN_SHARED_DATA to use another copy)")
    return SHARED_DATA
