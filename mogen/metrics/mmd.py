"""MoGen's realism score: MMD between sets of shape features.

Definition (so numbers compare with MoGen's, e.g. 3.54 after 500k steps):

1. For every cloud compute the ten shape features of
   :func:`mogen.metrics.features.cloud_features` (on all its points).
2. Divide each feature by its standard deviation (ddof=0) over ``scale_from``, the
   *training* fragments (default: the reference set). The features are lengths, so the
   score does not depend on the length unit as long as all three sets share it.
3. Squared MMD with the Gaussian (RBF) kernel :math:`k(a,b)=\\exp(-\\lVert a-b\\rVert^2/2\\sigma^2)`,
   :math:`\\sigma=10`, *biased* estimator (V-statistic: the diagonals of the within-set
   kernel matrices are included):

   .. math:: \\mathrm{MMD}^2 = \\overline{K_{gg}} + \\overline{K_{rr}} - 2\\,\\overline{K_{gr}}

4. Multiply by 1000. MoGen calls this number "MMD"; it is the squared MMD. It is 0 for
   identical sets and at most 2000. Being biased it is > 0 for two samples of the same
   distribution and shrinks as 1/n, so compare scores at equal set sizes.

The bias floor (:func:`mmd_floor`): two independent samples of sizes n and m of *one*
distribution score on average :math:`1000\\,(1/n + 1/m)\\,(1 - \\overline{k})`, where
:math:`\\overline{k}` is the mean kernel between two different draws. With the ten scaled
features and sigma = 10, :math:`1 - \\overline{k} \\approx 0.095`, so the floor is about
95 (1/n + 1/m): 3.0 at 64 vs 64, 0.74 at 256 vs 256. Scores near the floor cannot be told apart.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a = rng.normal(size=(64, 10))
>>> mmd_rbf(a, a)
0.0
>>> round(mmd_rbf(a, a + 100.0), 3)   # far apart: the two within-set terms only
1.815
"""

from __future__ import annotations

import numpy as np

from mogen.metrics.features import N_FEATURES, cloud_features

SIGMA = 10.0


def _as_features(x, name: str, progress: bool) -> np.ndarray:
    """Accept precomputed features [n, 10] or point clouds [n, N, 3]."""
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if arr.ndim == 2 and arr.shape[1] == N_FEATURES:
        return arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cloud_features(arr, progress=progress)
    raise ValueError(
        f"{name}: expected shape features [n, {N_FEATURES}] or point clouds [n, N, 3], got {arr.shape}"
    )


def mmd_rbf(x: np.ndarray, y: np.ndarray, sigma: float = SIGMA) -> float:
    """Biased squared MMD between samples ``x`` [n, d] and ``y`` [m, d], Gaussian kernel.

    Computed in float64 from pairwise squared distances; O((n+m)^2 d) memory-light.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) == 0 or len(y) == 0:
        raise ValueError(f"MMD needs non-empty sets, got {len(x)} and {len(y)} rows")

    def mean_kernel(a, b):
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return float(np.exp(-np.clip(d2, 0.0, None) / (2.0 * sigma**2)).mean())

    return max(0.0, mean_kernel(x, x) + mean_kernel(y, y) - 2.0 * mean_kernel(x, y))


def mmd_floor(n: int, m: int, reference: np.ndarray | None = None, sigma: float = SIGMA) -> float:
    """Expected biased feature-MMD (x1000) of two samples of ONE distribution, of sizes n and m.

    The V-statistic keeps the diagonals, so two samples of the same distribution score
    ``1000 (1 - E k(x, x')) (1/n + 1/m)`` on average, not 0: numbers near this floor cannot
    separate generators. ``reference`` (scaled features [r, d], r >= 2) estimates ``E k(x, x')``
    from its distinct pairs; without it the value measured on real fragments here is used
    (E k ~ 0.905, i.e. a floor of 95 (1/n + 1/m): 3.0 at n = m = 64, 0.74 at 256).

    Examples
    --------
    >>> round(mmd_floor(64, 64), 2), round(mmd_floor(256, 256), 2)
    (2.97, 0.74)
    """
    if n < 1 or m < 1:
        raise ValueError(f"set sizes must be positive, got {n} and {m}")
    if reference is None:
        mean_k = 0.905
    else:
        r = np.asarray(reference, dtype=np.float64)
        d2 = (r * r).sum(1)[:, None] + (r * r).sum(1)[None, :] - 2.0 * r @ r.T
        k = np.exp(-np.clip(d2, 0.0, None) / (2.0 * sigma**2))
        mean_k = float((k.sum() - np.trace(k)) / (len(r) * (len(r) - 1)))
    return 1000.0 * (1.0 - mean_k) * (1.0 / n + 1.0 / m)


def feature_scale(train) -> np.ndarray:
    """Per-feature std (ddof=0) of a training set of features or clouds.

    A feature that is constant over the set (std 0) is left unscaled (divided by 1).
    """
    std = _as_features(train, "scale_from", progress=False).std(0)
    return np.where(std > 0, std, 1.0)


def feature_mmd(generated, reference, scale_from=None, sigma: float = SIGMA, progress: bool = False) -> float:
    """MoGen's feature-MMD (x1000) between generated and reference fragments.

    Parameters
    ----------
    generated, reference : array/Tensor
        Point clouds [n, N, 3] in the *same* length unit (e.g. both unit-ball coords),
        or their precomputed :func:`cloud_features` [n, 10].
    scale_from : optional, same forms
        Set whose per-feature std normalises the features: MoGen uses the training
        fragments. Default: ``reference``.
    sigma : float
        Kernel bandwidth in units of feature std (MoGen: 10).

    Returns
    -------
    float: 1000 x biased squared MMD. Lower is better; 0 for identical sets.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> real = rng.normal(size=(32, 512, 3)) * [1.0, 0.1, 0.1]   # rods
    >>> feature_mmd(real, real)
    0.0
    >>> feature_mmd(rng.normal(size=(32, 512, 3)), real) > 100     # balls are not rods
    True
    """
    g = _as_features(generated, "generated", progress)
    r = _as_features(reference, "reference", progress)
    scale = feature_scale(r if scale_from is None else scale_from)
    return 1000.0 * mmd_rbf(g / scale, r / scale, sigma)
