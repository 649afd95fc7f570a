"""Memorisation check: is a generated fragment closer to the training set than to new data?

For every generated cloud g (Chamfer distance with squared distances,
:mod:`mogen.metrics.pointcloud`, at full resolution):

- ``d_train``   = min over training fragments t of CD(g, t)
- ``d_heldout`` = min over held-out fragments h of CD(g, h)
- ``ratio``     = d_train / d_heldout

A generator that learned the distribution produces fragments about as close to held-out
neurons as real held-out fragments are to training ones; one that copies training fragments
has ratio << 1. A generated cloud is flagged as a **copy** when it is closer to a training
fragment than all but ``copy_quantile`` (default 1%) of real held-out fragments are:
``d_train < quantile(d_real, copy_quantile)``, ``d_real`` being the distance of each
held-out fragment to its nearest training fragment. So real new data would be flagged at
the rate ``copy_quantile``; a generator's ``copy_fraction`` well above it means copying.
(A fixed fraction of the typical distance does not work: neurons that run in one tract give
parallel, near-identical straight fragments, and in the default data 13% of the held-out
neuron's fragments lie within 0.1 x the median distance of some training fragment.)

The nearest fragment is searched in two stages, because all-pairs full-resolution CD is too
slow on a CPU: CD between ``points``-point random subsamples and distances between MoGen
shape features each nominate ``candidates`` fragments, then the exact CD of all points is
computed for those. (A subsample alone cannot see copies: two different subsamples of the
same cloud are not close in CD; their full-resolution features are nearly equal.)

Examples
--------
>>> import torch
>>> g = torch.Generator().manual_seed(2)
>>> train, heldout = torch.rand(20, 64, 3, generator=g), torch.rand(10, 64, 3, generator=g)
>>> generated = torch.cat([train[:3], torch.rand(5, 64, 3, generator=g)])      # 3 exact copies
>>> m = memorization(generated, train, heldout, points=32)
>>> bool(m["is_copy"][:3].all()), m["copies"]
(True, 3)
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from scipy.spatial import cKDTree

from mogen.metrics.features import as_clouds, cloud_features
from mogen.metrics.parallel import map_chunks, split
from mogen.metrics.pointcloud import chamfer_matrix, subsample

COPY_QUANTILE = 0.01


def nearest_chamfer(
    queries,
    pool,
    points: int = 128,
    candidates: int = 4,
    query_features: np.ndarray | None = None,
    pool_features: np.ndarray | None = None,
    progress: bool = False,
    desc: str = "nearest",
    workers: int = 1,
) -> np.ndarray:
    """Full-resolution CD from each query cloud to its nearest cloud in ``pool`` [m, N, 3].

    Candidates: the ``candidates`` nearest by CD of ``points``-point subsamples, plus as
    many nearest in MoGen shape-feature space (standardised by the pool's std), which
    finds copies even among clouds that look alike at low resolution. Features are
    computed when not given. ``workers`` processes share the exact stage (same result).
    """
    queries = as_clouds(queries, "queries")
    pool = as_clouds(pool, "pool")
    coarse = chamfer_matrix(
        subsample(queries, points, seed=2), subsample(pool, points, seed=1), progress=progress, desc=f"{desc} (coarse)"
    )
    k = min(candidates, coarse.shape[1])
    by_cd = coarse.topk(k, dim=1, largest=False).indices.numpy()
    qf = cloud_features(queries) if query_features is None else np.asarray(query_features)
    pf = cloud_features(pool) if pool_features is None else np.asarray(pool_features)
    scale = np.where(pf.std(0) > 0, pf.std(0), 1.0)
    by_feature = cKDTree(pf / scale).query(qf / scale, k=k)[1].reshape(len(qf), k)
    wanted = [set(by_cd[i].tolist()) | set(by_feature[i].tolist()) for i in range(len(queries))]
    if workers > 1 and len(queries) > 1:
        chunks = []
        for r in split(len(queries), 4 * workers):
            used = sorted(set().union(*(wanted[i] for i in r)))  # send each worker only its candidates
            local = {j: k for k, j in enumerate(used)}
            chunks.append((queries[r.start : r.stop], pool[used], [[local[j] for j in wanted[i]] for i in r], False))
        return np.concatenate(map_chunks(_exact_nearest, chunks, workers))
    bar = dict(desc=f"{desc} (exact)", disable=not progress, leave=False)
    return _exact_nearest((queries, pool, [list(w) for w in wanted], bar))


def _exact_nearest(args) -> np.ndarray:
    """Full-resolution CD from each query to the nearest of its candidate pool clouds."""
    queries, pool, candidates, bar = args
    out = np.empty(len(queries))
    trees: dict[int, cKDTree] = {}  # pool clouds are candidates of many queries: build once
    for i in tqdm(range(len(queries)), **(bar or {"disable": True})):
        q, q_tree = queries[i], cKDTree(queries[i])
        best = np.inf
        for j in candidates[i]:
            if j not in trees:
                trees[j] = cKDTree(pool[j])
            cd = (trees[j].query(q)[0] ** 2).mean() + (q_tree.query(pool[j])[0] ** 2).mean()
            best = min(best, cd)
        out[i] = best
    return out


def memorization(
    generated,
    train,
    heldout,
    copy_quantile: float = COPY_QUANTILE,
    points: int = 128,
    candidates: int = 4,
    heldout_to_train: np.ndarray | None = None,
    features: dict | None = None,
    progress: bool = False,
    workers: int = 1,
) -> dict:
    """Nearest-train vs nearest-held-out Chamfer distances of generated clouds.

    Parameters
    ----------
    generated, train, heldout : clouds [n, N, 3] in the same coordinates (unit ball)
    copy_quantile : float
        A sample closer to training than this quantile of the real held-out fragments'
        nearest-train distances is flagged as a copy.
    points, candidates : the two-stage nearest search (module docstring).
    heldout_to_train : optional array [len(heldout)]
        Precomputed nearest-train CD of the held-out fragments (reused across sets).
    features : optional dict with "generated", "train", "heldout"
        Precomputed :func:`cloud_features` of the three sets (computed when missing).
    workers : processes for the exact nearest searches (:mod:`mogen.metrics.parallel`; same result).

    Returns
    -------
    dict with ``ratio_median``, ``ratio_p10``, ``ratio_p90``, ``copies`` (count),
    ``copy_fraction``, ``copy_threshold``, ``real_heldout_to_train_median``,
    ``real_flagged_fraction`` (real held-out fragments the rule would flag) and per-sample
    arrays ``d_train``, ``d_heldout``, ``ratio``, ``is_copy``.
    """
    f = dict(features or {})
    for key, clouds in (("generated", generated), ("train", train), ("heldout", heldout)):
        if f.get(key) is None:
            f[key] = cloud_features(clouds)
    kw = dict(points=points, candidates=candidates, progress=progress, workers=workers)
    d_train = nearest_chamfer(generated, train, query_features=f["generated"], pool_features=f["train"], desc="memorisation: train", **kw)
    d_heldout = nearest_chamfer(generated, heldout, query_features=f["generated"], pool_features=f["heldout"], desc="memorisation: held-out", **kw)
    if heldout_to_train is None:
        heldout_to_train = nearest_chamfer(heldout, train, query_features=f["heldout"], pool_features=f["train"], desc="held-out vs train", **kw)
    real = np.asarray(heldout_to_train)
    threshold = float(np.quantile(real, copy_quantile))
    ratio = d_train / np.maximum(d_heldout, 1e-12)
    is_copy = d_train < threshold
    return {
        "ratio_median": float(np.median(ratio)),
        "ratio_p10": float(np.percentile(ratio, 10)),
        "ratio_p90": float(np.percentile(ratio, 90)),
        "copies": int(is_copy.sum()),
        "copy_fraction": float(is_copy.mean()),
        "copy_threshold": threshold,
        "real_heldout_to_train_median": float(np.median(real)),
        # the same rule applied to real held-out fragments: the rate expected without copying
        "real_flagged_fraction": float((real < threshold).mean()),
        "d_train": d_train,
        "d_heldout": d_heldout,
        "ratio": ratio,
        "is_copy": is_copy,
    }
