"""Point-cloud generation metrics of the PointFlow protocol (Yang et al., 2019).

Distances between two clouds X, Y (both N points):

- **Chamfer distance (CD)**, with *squared* Euclidean distances and means (not sums):
  :math:`CD(X,Y)=\\frac1{|X|}\\sum_x\\min_y\\lVert x-y\\rVert^2+\\frac1{|Y|}\\sum_y\\min_x\\lVert x-y\\rVert^2`.
- **Earth mover's distance (EMD)**, exact: the optimal one-to-one matching
  (``scipy.optimize.linear_sum_assignment``) of two clouds of equal size, reported as the
  mean *Euclidean* (not squared) distance between matched points.

Brute-force CD costs N^2 per pair, so on a CPU both are computed on a random subsample of
each cloud (``subsample``; same seed, same indices for every cloud); the point count is part
of every reported number (PointFlow used 2,048 points on a GPU).

From distance matrices between a generated set G and a reference set R of equal size:

- **MMD** (minimum matching distance): mean over r in R of min over g of D(g, r). Lower is better.
- **COV** (coverage): fraction of R that is the nearest reference of some g. Higher is better.
- **1-NNA**: leave-one-out accuracy of the 1-nearest-neighbour classifier on G ∪ R, labels
  "generated"/"reference". 50% is ideal (indistinguishable); 100% means every cloud's
  nearest neighbour is from its own set; well below 50% means generated clouds sit on
  top of reference clouds (exact copies score 0%).

Examples
--------
>>> import torch
>>> g = torch.rand(6, 64, 3)
>>> r = torch.rand(6, 64, 3) + 5.0          # far away
>>> m = pointflow_metrics(chamfer_matrix(g, r), chamfer_matrix(g), chamfer_matrix(r))
>>> m["1-NNA"], m["COV"] < 1.0
(1.0, True)
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from tqdm.auto import tqdm

from mogen.metrics.features import as_clouds
from mogen.metrics.parallel import map_chunks, split


def subsample(clouds, points: int | None, seed: int = 0) -> torch.Tensor:
    """``points`` random points of each cloud (without replacement), float32 [n, points, 3].

    ``None`` or ``points >= N`` returns all points. Each cloud gets its own random subset,
    reproducible from ``seed``.
    """
    x = torch.as_tensor(as_clouds(clouds), dtype=torch.float32)
    n, N, _ = x.shape
    if points is None or points >= N:
        return x
    g = torch.Generator().manual_seed(seed)
    idx = torch.rand(n, N, generator=g).argsort(1)[:, :points]
    return torch.gather(x, 1, idx[..., None].expand(-1, -1, 3))


def _lifted(x: torch.Tensor):
    """Rows whose products give squared distances: [x, |x|^2, 1] . [-2y, 1, |y|^2]."""
    sq = (x * x).sum(-1, keepdim=True)
    one = torch.ones_like(sq)
    return torch.cat([x, sq, one], -1).flatten(0, 1), torch.cat([-2 * x, one, sq], -1).flatten(0, 1)


def _chamfer_block(a, b):
    """CD between every cloud of block a [A, N, 3] and of block b [B, M, 3] -> [A, B]."""
    A, N, _ = a.shape
    B, M, _ = b.shape
    al, ar = _lifted(a)
    bl, br = _lifted(b)
    # Two products so that both minimisations run over the contiguous last axis.
    a_to_b = (al @ br.T).view(A, N, B, M).amin(-1).clamp_min_(0).mean(1)
    b_to_a = (bl @ ar.T).view(B, M, A, N).amin(-1).clamp_min_(0).mean(1)
    return a_to_b + b_to_a.T


def chamfer_matrix(a, b=None, block: int = 8, progress: bool = False, desc: str = "chamfer") -> torch.Tensor:
    """Pairwise Chamfer distances (squared-distance CD, see module docstring).

    Parameters
    ----------
    a : [n, N, 3], b : [m, M, 3] or None
        Clouds (numpy or torch; subsample them first, cost is n*m*N*M). ``b=None``
        computes the symmetric matrix of ``a`` with itself (half the work).
    block : int
        Clouds per block; 8 keeps a block's distance matrix in cache for N=128..256.

    Returns
    -------
    float64 Tensor [n, m] (float32 arithmetic; exact copies give ~1e-7, not 0).
    """
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a, dtype=torch.float32)
    sym = b is None
    b = a if sym else torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b, dtype=torch.float32)
    n, m = len(a), len(b)
    out = torch.zeros(n, m, dtype=torch.float64)
    starts_a = range(0, n, block)
    jobs = [(i, j) for i in starts_a for j in range(0, m, block) if not sym or j >= i]
    with torch.no_grad():
        for i, j in tqdm(jobs, desc=desc, unit="block", disable=not progress, leave=False):
            d = _chamfer_block(a[i : i + block], b[j : j + block]).double()
            out[i : i + block, j : j + block] = d
            if sym:
                out[j : j + block, i : i + block] = d.T
    return out


def emd(x: np.ndarray, y: np.ndarray) -> float:
    """Exact EMD of two equal-size clouds: mean Euclidean distance of the optimal matching."""
    if len(x) != len(y):
        raise ValueError(f"EMD needs clouds of equal size, got {len(x)} and {len(y)} points")
    cost = cdist(x, y)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def _emd_pairs(args) -> list[float]:
    a, b, pairs = args
    return [emd(a[i], b[j]) for i, j in pairs]


def emd_matrix(a, b=None, progress: bool = False, desc: str = "EMD", workers: int = 1) -> torch.Tensor:
    """Pairwise exact EMD (see :func:`emd`); ``b=None`` for the symmetric matrix of ``a``.

    Cost grows as N^3 per pair: use ~128-256 points (``subsample``) and a subset of clouds.
    ``workers`` processes share the pairs (:mod:`mogen.metrics.parallel`; same result).
    """
    a = as_clouds(a, "a")
    sym = b is None
    b = a if sym else as_clouds(b, "b")
    n, m = len(a), len(b)
    out = torch.zeros(n, m, dtype=torch.float64)
    jobs = [(i, j) for i in range(n) for j in range(m) if not sym or j > i]
    if workers > 1 and len(jobs) > 1:
        parts = split(len(jobs), 4 * workers)
        values = np.concatenate(map_chunks(_emd_pairs, [(a, b, jobs[r.start : r.stop]) for r in parts], workers))
        rows, cols = np.array(jobs).T
        out[rows, cols] = torch.from_numpy(values)
        if sym:
            out[cols, rows] = torch.from_numpy(values)
        return out
    for i, j in tqdm(jobs, desc=desc, unit="pair", disable=not progress, leave=False):
        out[i, j] = emd(a[i], b[j])
        if sym:
            out[j, i] = out[i, j]
    return out


def one_nna(d_gr, d_gg, d_rr) -> float:
    """Leave-one-out 1-NN accuracy on G ∪ R (fraction in [0, 1], 0.5 ideal)."""
    d_gr, d_gg, d_rr = (torch.as_tensor(d, dtype=torch.float64) for d in (d_gr, d_gg, d_rr))
    ng, nr = d_gr.shape
    top = torch.cat([d_gg, d_gr], 1)
    bottom = torch.cat([d_gr.T, d_rr], 1)
    full = torch.cat([top, bottom], 0).clone()
    full.fill_diagonal_(float("inf"))  # leave one out
    nearest = full.argmin(1)
    is_gen = torch.arange(ng + nr) < ng
    correct = is_gen == (nearest < ng)
    return float(correct.double().mean())


def coverage(d_gr) -> float:
    """Fraction of reference clouds that are the nearest reference of some generated cloud."""
    d_gr = torch.as_tensor(d_gr)
    return len(torch.unique(d_gr.argmin(1))) / d_gr.shape[1]


def minimum_matching_distance(d_gr) -> float:
    """Mean over reference clouds of the distance to their closest generated cloud."""
    return float(torch.as_tensor(d_gr).min(0).values.mean())


def pointflow_metrics(d_gr, d_gg, d_rr) -> dict:
    """``{"MMD", "COV", "1-NNA"}`` from the three distance matrices (G×R, G×G, R×R)."""
    return {
        "MMD": minimum_matching_distance(d_gr),
        "COV": coverage(d_gr),
        "1-NNA": one_nna(d_gr, d_gg, d_rr),
    }


def outside_ball(clouds, radius: float = 1.0) -> np.ndarray:
    """Per cloud, the fraction of points farther than ``radius`` from the origin (the crop anchor).

    Real fragments are crops of a ball of radius 1 (unit-ball coordinates), so for them it is 0;
    a generator's stray points show up here, and clipping them onto the sphere would hide them.

    >>> import numpy as np
    >>> x = np.zeros((2, 4, 3)); x[0, :2, 0] = 1.5
    >>> outside_ball(x).tolist(), outside_ball(x, 2.0).tolist()
    ([0.5, 0.0], [0.0, 0.0])
    """
    x = np.asarray(clouds.detach().cpu() if isinstance(clouds, torch.Tensor) else clouds, dtype=np.float64)
    return (np.linalg.norm(x, axis=-1) > radius).mean(-1)


SPACING_KS = (1, 8, 32, 128)


def knn_spacing(clouds, ks=SPACING_KS) -> np.ndarray:
    """Per cloud, the mean distance of a point to its k-th nearest neighbour, k in ``ks``: [n, len(ks)].

    Generated ÷ real, per k, says how uniform a generator's surface is: beads (points piled onto
    each other with gaps between) give ratios < 1 at small k and > 1 at k past the bead size. A
    cloud of fuzzy clusters can look right up to k = 32 and still be clumped, hence k = 128.
    k larger than a cloud allows is capped at its N - 1.

    >>> import numpy as np
    >>> grid = np.stack(np.meshgrid(*[np.arange(6.0)] * 3), -1).reshape(1, -1, 3)  # spacing 1
    >>> knn_spacing(grid, ks=(1,)).tolist()
    [[1.0]]
    >>> knn_spacing(np.concatenate([grid, grid], 1), ks=(1,)).tolist()  # every point doubled: a bead of 2
    [[0.0]]
    """
    x = as_clouds(clouds)
    kmax = min(max(ks), x.shape[1] - 1)
    out = np.empty((len(x), len(ks)))
    for i, c in enumerate(x):
        d, _ = cKDTree(c).query(c, k=kmax + 1)  # column 0 is the point itself
        out[i] = [d[:, min(k, kmax)].mean() for k in ks]
    return out


def chamfer(x, y) -> float:
    """Exact CD of two clouds of any size via k-d trees (no subsampling; ~2 ms at 2,048)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x_to_y = cKDTree(y).query(x)[0]
    y_to_x = cKDTree(x).query(y)[0]
    return float((x_to_y**2).mean() + (y_to_x**2).mean())
