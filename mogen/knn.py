"""k-nearest-neighbour features of point clouds, without torch-cluster.

The velocity network gives every point the relative coordinates of its k nearest
neighbours. Finding the neighbours is the expensive part (brute force is O(N^2) per
cloud), so it is done with scipy's cKDTree on the CPU (O(N log N), parallel over
``workers``). No gradient flows through *which* points are neighbours, only through
their coordinates, so the indices are computed on detached numpy copies and the
relative coordinates are gathered in torch, where autograd sees them.

Examples
--------
>>> import torch
>>> x = torch.rand(2, 500, 3)
>>> idx = knn_indices(x, k=8)
>>> idx.shape
torch.Size([2, 500, 8])
>>> bool((idx == knn_indices_bruteforce(x, k=8)).all())
True
>>> knn_relative(x, idx).shape
torch.Size([2, 500, 8, 3])

:func:`knn_graph` gives the same neighbours as a torch-geometric ``edge_index`` for clouds of
any sizes batched PyG-style (points [P, 3] and a sorted ``batch`` vector), the graph that
``torch_geometric.nn.knn_graph`` would build with torch-cluster:

>>> pos, batch = torch.rand(7, 3), torch.tensor([0, 0, 0, 1, 1, 1, 1])
>>> knn_graph(pos, k=2, batch=batch).shape
torch.Size([2, 14])
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree


def knn_indices(points: torch.Tensor, k: int = 16, workers: int = -1) -> torch.LongTensor:
    """Indices of the k nearest *other* points of each point, nearest first.

    Parameters
    ----------
    points : Tensor [B, N, 3] (or [N, 3])
    k : int
        Neighbours per point (the point itself excluded). Must be < N.
    workers : int
        Threads for the tree queries (-1: all cores).

    Returns
    -------
    LongTensor [B, N, k] on ``points.device``.
    """
    squeeze = points.dim() == 2
    if squeeze:
        points = points.unsqueeze(0)
    b, n, _ = points.shape
    if points.device.type != "cpu":  # on accelerators a distance matrix is faster than a round trip
        return knn_indices_bruteforce(points[0] if squeeze else points, k)
    if not 0 < k < n:
        raise ValueError(f"k={k} neighbours need more than k points per cloud; got N={n}")
    pts = points.detach().to("cpu", torch.float64).numpy()
    out = np.empty((b, n, k), dtype=np.int64)
    for i in range(b):
        # k+1 because each point is its own nearest neighbour.
        _, idx = cKDTree(pts[i]).query(pts[i], k=k + 1, workers=workers)
        out[i] = _drop_self(idx, k)
    idx = torch.from_numpy(out).to(points.device)
    return idx[0] if squeeze else idx


def knn_graph(pos: torch.Tensor, k: int, batch: torch.Tensor | None = None, workers: int = 1) -> torch.LongTensor:
    """kNN graph of clouds batched PyG-style, as an ``edge_index`` [2, P * k].

    Parameters
    ----------
    pos : Tensor [P, 3]
        The points of all clouds, cloud after cloud.
    k : int
        Neighbours per point (the point itself excluded); every cloud needs more than k points.
    batch : LongTensor [P], optional
        Cloud of each point, sorted (as in a ``torch_geometric.data.Batch``); None: one cloud.
    workers : int
        Threads for each tree query (clouds are small: one thread avoids pool start-up).

    Returns
    -------
    LongTensor [2, P * k] on ``pos.device``: row 0 the neighbour j, row 1 the point i, so
    messages flow from neighbours to points (PyG's ``source_to_target``); point i's edges are
    ``k`` consecutive columns, nearest first.
    """
    if pos.dim() != 2:
        raise ValueError(f"pos must be [P, 3] (clouds batched PyG-style); got shape {tuple(pos.shape)}")
    n = len(pos)
    if batch is None:
        counts = [n]
    else:
        if len(batch) != n or (n > 1 and bool((batch[1:] < batch[:-1]).any())):
            raise ValueError("batch must give each point's cloud, sorted, one entry per point")
        counts = torch.bincount(batch).tolist() if n else []
    pts = pos.detach().to("cpu", torch.float64).numpy()
    neighbour = np.empty((n, k), dtype=np.int64)
    start = 0
    for c in counts:
        if c == 0:
            continue
        if c <= k:
            raise ValueError(f"k={k} neighbours need more than k points per cloud; a cloud has {c}")
        cloud = pts[start : start + c]
        _, idx = cKDTree(cloud).query(cloud, k=k + 1, workers=workers)
        neighbour[start : start + c] = _drop_self(idx, k) + start
        start += c
    target = np.repeat(np.arange(n), k)
    return torch.from_numpy(np.stack([neighbour.reshape(-1), target])).to(pos.device)


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """Remove each point's own index from its k+1 neighbours (robust to duplicates)."""
    own = np.arange(len(idx))[:, None]
    is_self = idx == own
    # Usually column 0; with duplicate points the tie may put self elsewhere.
    if is_self[:, 0].all():
        return idx[:, 1:]
    keep = ~is_self
    keep[keep.sum(1) > k, -1] = False  # self not among the k+1: drop the farthest
    return idx[keep].reshape(len(idx), k)


def knn_indices_bruteforce(points: torch.Tensor, k: int = 16) -> torch.LongTensor:
    """Reference implementation of :func:`knn_indices` with a full distance matrix."""
    squeeze = points.dim() == 2
    if squeeze:
        points = points.unsqueeze(0)
    if not 0 < k < points.shape[-2]:
        raise ValueError(f"k={k} neighbours need more than k points per cloud; got N={points.shape[-2]}")
    p = points.detach()
    p = p.double() if p.device.type == "cpu" else p.float()
    d = torch.cdist(p, p)
    d.diagonal(dim1=-2, dim2=-1).fill_(float("inf"))
    idx = d.topk(k, dim=-1, largest=False).indices
    return idx[0] if squeeze else idx


def knn_relative(points: torch.Tensor, idx: torch.LongTensor) -> torch.Tensor:
    """Coordinates of each point's neighbours relative to it: [B, N, k, 3].

    Differentiable with respect to ``points``.
    """
    b, n, k = idx.shape
    flat = idx.reshape(b, n * k, 1).expand(-1, -1, points.shape[-1])
    neighbours = points.gather(1, flat).reshape(b, n, k, -1)
    return neighbours - points.unsqueeze(2)
