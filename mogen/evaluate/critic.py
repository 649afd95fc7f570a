"""A learned two-sample critic: can a point-cloud network tell generated fragments from real ones?

Classifier two-sample test (Lopez-Paz & Oquab 2017): train the shared PyG point-cloud network
(:class:`mogen.evaluate.pointnet.PointCloudNet`) to label clouds generated (1) or real (0) on
half of each set, and report its accuracy on the other half. 50% means the critic cannot tell
them apart; 100% means every held-out cloud gives itself away. Feature-MMD and 1-NNA compare
hand-made features or point-to-point distances; the critic learns whatever differs (branching,
tube radius, surface texture, how pieces end) and needs no choice of features.

The network sees each cloud in its canonical moment frame, so orientation is no cue; each cloud
is thinned to the same number of points (PyG ``FixedPoints``, without replacement), so point
count is none either.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> blobs = rng.normal(size=(32, 64, 3)).astype(np.float32) * 0.3
>>> sticks = blobs * np.array([1.0, 0.05, 0.05], np.float32)
>>> r = two_sample_test(sticks, blobs, steps=30, points=64)
>>> r["n_per_side"], r["n_test_per_side"], r["accuracy"] > 0.9
(32, 16, True)
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.stats import binomtest, mannwhitneyu
from torch_geometric.transforms import FixedPoints

from mogen.errors import UsageError
from mogen.evaluate.pointnet import PointCloudNet, cloud_graphs, predict, train_binary


def two_sample_test(
    generated,
    reference,
    n: int | None = None,
    test_fraction: float = 0.5,
    steps: int = 400,
    batch_size: int = 32,
    lr: float = 2e-3,
    points: int = 256,
    k: int = 12,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Held-out accuracy of a critic trained to tell ``generated`` from ``reference`` clouds.

    Parameters
    ----------
    generated, reference : array [n, N, 3] or sequence of [N_i, 3] arrays
        Clouds in the same frame (unit-ball fragment coordinates, centred on the anchor).
    n : int or None
        Clouds per side (a seeded random subset); None: as many as the smaller side has.
    test_fraction : float
        Share of each side held out to measure accuracy; the rest trains the critic.
    steps, batch_size, lr : training schedule (AdamW, cosine decay, balanced batches).
    points : int
        Each cloud is thinned to this many points (fewer are kept as they are).
    k : int
        Neighbours in each cloud's kNN graph.
    seed : int
        Fixes the subsets, the split, the thinning, initialisation and batch order: the same
        inputs and seed give the same result.

    Returns
    -------
    dict with ``accuracy`` (held-out, both sides together), ``ci95`` (Wilson interval),
    ``p_value`` (one-sided binomial test of accuracy > 0.5: the critic beats chance),
    ``auroc`` (held-out, of the critic's probability), ``train_accuracy``, ``n_per_side``,
    ``n_train_per_side``, ``n_test_per_side``, ``steps``, ``batch_size``, ``points``, ``k``,
    ``seed``, ``seconds``. The interval treats held-out clouds as independent; overlapping crops
    of one neuron are not, so read it as a lower bound on the uncertainty.
    """
    t0 = time.perf_counter()
    sizes = (len(generated), len(reference))
    n_side = min(sizes) if n is None else int(n)
    if n_side > min(sizes):
        raise UsageError(f"two-sample test: n={n_side} clouds per side, but the sets hold {sizes[0]} (generated) "
                         f"and {sizes[1]} (reference)")
    if not 0 < test_fraction < 1:
        raise UsageError(f"two-sample test: test_fraction must be in (0, 1), got {test_fraction}")
    n_test = int(round(test_fraction * n_side))
    if n_test < 1 or n_side - n_test < 1:
        raise UsageError(f"two-sample test: n={n_side} per side leaves no train or no test clouds "
                         f"at test_fraction={test_fraction}; use more clouds")
    for name, v in (("steps", steps), ("batch_size", batch_size), ("points", points)):
        if v < 1:
            raise UsageError(f"two-sample test: {name} must be >= 1, got {v}")
    if points <= k:
        raise UsageError(f"two-sample test: points={points} must exceed k={k} neighbours")

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)  # FixedPoints and the network's initialisation draw from torch's generator
    thin = FixedPoints(points, replace=False)
    train, test = [], []
    for label, clouds in ((1, generated), (0, reference)):
        pick = rng.permutation(len(clouds))[:n_side]
        data = cloud_graphs([clouds[int(i)] for i in pick], k, labels=np.full(n_side, label), transform=thin)
        test += data[:n_test]
        train += data[n_test:]
    model = PointCloudNet(k=k)
    train_binary(model, [train], [batch_size], steps, lr=lr, seed=seed, progress=progress, desc="two-sample critic")

    p_test, p_train = predict(model, test), predict(model, train)
    y_test = np.array([float(d.y) for d in test])
    y_train = np.array([float(d.y) for d in train])
    correct = int(((p_test > 0.5) == (y_test == 1)).sum())
    ci = binomtest(correct, len(test)).proportion_ci(0.95, method="wilson")
    return {
        "accuracy": correct / len(test),
        "ci95": [float(ci.low), float(ci.high)],
        "p_value": float(binomtest(correct, len(test), 0.5, alternative="greater").pvalue),
        # P(a held-out generated cloud scores above a real one), Mann-Whitney U / (n n)
        "auroc": float(mannwhitneyu(p_test[y_test == 1], p_test[y_test == 0]).statistic / n_test**2),
        "train_accuracy": float(((p_train > 0.5) == (y_train == 1)).mean()),
        "n_per_side": n_side,
        "n_train_per_side": n_side - n_test,
        "n_test_per_side": n_test,
        "steps": steps,
        "batch_size": batch_size,
        "points": points,
        "k": k,
        "seed": seed,
        "seconds": time.perf_counter() - t0,
    }
