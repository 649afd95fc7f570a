"""Train/val/test split by neuron: no neuron contributes to two splits."""

from __future__ import annotations

import math

import numpy as np

SPLITS = ("train", "val", "test")


def split_counts(n: int, val: float, test: float) -> tuple[int, int, int]:
    """How many neurons go to train, val and test.

    test gets ``max(1, round(test·n))`` when ``test > 0`` and ``n ≥ 2``; val gets
    ``floor(val·n)``; train keeps at least one neuron (val shrinks first, then test).

    Examples
    --------
    >>> split_counts(5, 0.1, 0.1)
    (4, 0, 1)
    >>> split_counts(79, 0.1, 0.1)
    (64, 7, 8)
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val ({val}) and test ({test}) must be fractions in [0, 1) summing to < 1")
    n_test = max(1, round(test * n)) if test > 0 and n >= 2 else 0
    n_val = math.floor(val * n)
    excess = n_val + n_test - (n - 1)
    if n >= 1 and excess > 0:
        cut = min(excess, n_val)
        n_val -= cut
        n_test -= excess - cut
    n_test = max(n_test, 0)
    return n - n_val - n_test, n_val, n_test


def split_neurons(ids, val: float = 0.1, test: float = 0.1, seed: int = 0) -> dict[str, list[str]]:
    """Assign neuron ids to splits with a seeded shuffle (independent of input order).

    Examples
    --------
    >>> s = split_neurons(["a", "b", "c", "d", "e"], 0.1, 0.1, seed=0)
    >>> [len(s[k]) for k in SPLITS]
    [4, 0, 1]
    """
    ids = sorted(str(i) for i in ids)
    if len(set(ids)) != len(ids):
        raise ValueError("neuron ids must be unique")
    n_train, n_val, _ = split_counts(len(ids), val, test)
    perm = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    return {
        "train": sorted(perm[:n_train]),
        "val": sorted(perm[n_train:n_train + n_val]),
        "test": sorted(perm[n_train + n_val:]),
    }
