"""Train/val/test split by cell: no cell (and so no file of it) contributes to two splits.

Files that hold the same cell are grouped by :mod:`mogen.data.cells`; the split then assigns
whole cells, and its val/test counts are counted in cells.
"""

from __future__ import annotations

import math

import numpy as np

from mogen.errors import UsageError

SPLITS = ("train", "val", "test")


def check_fractions(val: float, test: float) -> None:
    """Raise :class:`mogen.errors.UsageError` unless val and test are fractions in [0, 1) summing to < 1.

    Examples
    --------
    >>> check_fractions(0, 1.0)
    Traceback (most recent call last):
    mogen.errors.UsageError: --val 0 and --test 1 must be fractions in [0, 1) that sum to less than 1 (train keeps the rest)
    """
    ok = all(isinstance(x, (int, float)) and math.isfinite(x) and 0 <= x < 1 for x in (val, test)) and val + test < 1
    if not ok:
        raise UsageError(f"--val {val:g} and --test {test:g} must be fractions in [0, 1) that sum to less than 1 "
                         "(train keeps the rest)")


def split_counts(n: int, val: float, test: float) -> tuple[int, int, int]:
    """How many cells go to train, val and test.

    test gets ``max(1, round(test·n))`` when ``test > 0`` and ``n ≥ 2``; val gets
    ``floor(val·n)``, but at least 1 when ``val > 0`` and ``n ≥ 3``; train keeps at least one
    cell (val shrinks first, then test).

    Examples
    --------
    >>> split_counts(5, 0.1, 0.1)
    (3, 1, 1)
    >>> split_counts(79, 0.1, 0.1)
    (64, 7, 8)
    >>> split_counts(2, 0.1, 0.1), split_counts(5, 0, 0.1)
    ((1, 0, 1), (4, 0, 1))
    """
    check_fractions(val, test)
    n_test = max(1, round(test * n)) if test > 0 and n >= 2 else 0
    n_val = math.floor(val * n)
    if val > 0 and n >= 3:
        n_val = max(n_val, 1)
    excess = n_val + n_test - (n - 1)
    if n >= 1 and excess > 0:
        cut = min(excess, n_val)
        n_val -= cut
        n_test -= excess - cut
    n_test = max(n_test, 0)
    return n - n_val - n_test, n_val, n_test


def assign_cells(cells, val: float = 0.1, test: float = 0.1, seed: int = 0) -> dict[str, list[str]]:
    """Cell ids per split, from a seeded shuffle (independent of input order).

    Examples
    --------
    >>> assign_cells(["a", "b", "c", "d", "e"], 0.1, 0.1, seed=0)
    {'train': ['c', 'd', 'e'], 'val': ['a'], 'test': ['b']}
    """
    cells = sorted(str(c) for c in cells)
    if len(set(cells)) != len(cells):
        raise ValueError("cell ids must be unique")
    n_train, n_val, _ = split_counts(len(cells), val, test)
    perm = [cells[i] for i in np.random.default_rng(seed).permutation(len(cells))]
    return {"train": sorted(perm[:n_train]), "val": sorted(perm[n_train:n_train + n_val]), "test": sorted(perm[n_train + n_val:])}


def split_neurons(ids, val: float = 0.1, test: float = 0.1, seed: int = 0, cell_of: dict | None = None) -> dict[str, list[str]]:
    """Neuron (file) ids per split; the files of one cell (``cell_of``: id -> cell) stay together.

    Without ``cell_of`` every file is its own cell.

    Examples
    --------
    >>> s = split_neurons(["a", "b", "c", "d", "e"], 0.1, 0.1, seed=0)
    >>> [len(s[k]) for k in SPLITS]
    [3, 1, 1]
    >>> s = split_neurons(["a1", "a2", "b", "c", "d"], seed=0, cell_of={"a1": "A", "a2": "A"})
    >>> [k for k in SPLITS if {"a1", "a2"} & set(s[k])]  # both files of cell A, in one split
    ['train']
    """
    ids = sorted(str(i) for i in ids)
    if len(set(ids)) != len(ids):
        raise ValueError("neuron ids must be unique")
    cell_of = {i: str((cell_of or {}).get(i, i)) for i in ids}
    by_cell = assign_cells(set(cell_of.values()), val, test, seed)
    split_of = {c: s for s, cells in by_cell.items() for c in cells}
    return {s: [i for i in ids if split_of[cell_of[i]] == s] for s in SPLITS}
