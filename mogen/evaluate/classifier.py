"""A small point-cloud shape-plausibility classifier: is this candidate object one neuron?

DGCNN-style (Wang et al. 2019) on the cloud in its moment frame: an EdgeConv layer on the cloud's kNN graph (built once from
coordinates with ``torch.cdist``, no torch-cluster), a pointwise MLP, max+mean pooling and an
MLP head that returns one logit (high = one neuron, i.e. accept the merge).

Examples
--------
>>> import torch
>>> model = PlausibilityNet()
>>> model(torch.randn(4, 256, 3) * 0.3).shape
torch.Size([4])
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from mogen.geometry import random_rotations


def knn_indices(x: torch.Tensor, k: int, batch_size: int = 256) -> torch.Tensor:
    """Indices [B, N, k] of each point's k nearest neighbours (itself excluded).

    The graph depends only on distances, so it survives rotation and is computed once per
    candidate, not once per training step.
    """
    out = []
    for i in range(0, len(x), batch_size):
        d = torch.cdist(x[i : i + batch_size], x[i : i + batch_size])
        out.append(d.topk(k + 1, largest=False).indices[..., 1:])
    return torch.cat(out) if out else torch.zeros((0, x.shape[1], k), dtype=torch.long)


def gather_neighbours(feat: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """feat [B, N, C], idx [B, N, k] -> [B, N, k, C]."""
    B, N, k = idx.shape
    flat = (idx + torch.arange(B, device=idx.device).view(B, 1, 1) * N).reshape(-1)
    return feat.reshape(B * N, -1).index_select(0, flat).reshape(B, N, k, -1)


class EdgeConv(nn.Module):
    """h_i = max_j MLP([f_i, f_j - f_i]) over the kNN graph.

    The first linear layer is split as A f_i + B (f_j - f_i) so it runs once per point rather
    than once per edge; the second runs per edge.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.centre = nn.Linear(c_in, c_out)
        self.offset = nn.Linear(c_in, c_out, bias=False)
        self.out = nn.Linear(c_out, c_out)

    def forward(self, feat: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        a, b = self.centre(feat), self.offset(feat)
        h = F.relu(gather_neighbours(b, idx) + (a - b).unsqueeze(2))
        return self.out(h).amax(2)


def canonical_frame(points: torch.Tensor) -> torch.Tensor:
    """Rotate each cloud [B, N, 3] into the frame of its second moments about the origin.

    Candidates are centred on their contact point, so the frame's axes are the directions in
    which the merged object extends from the contact; each axis's sign is set by the third
    moment along it. The classifier is then rotation invariant by construction instead of
    having to learn it from random rotations (on the skeleton dataset: test AUROC 0.75 -> 0.86
    after 1,000 steps).
    """
    moments = points.transpose(1, 2) @ points / points.shape[1]
    _, axes = torch.linalg.eigh(moments)
    y = points @ axes
    sign = torch.sign((y**3).mean(1, keepdim=True))
    return y * torch.where(sign == 0, torch.ones_like(sign), sign)


class PlausibilityNet(nn.Module):
    """Canonical frame → EdgeConv(3→width) on the kNN graph → pointwise MLP → max+mean pool → MLP → logit.

    One EdgeConv layer (not DGCNN's four) keeps a training step at tens of milliseconds on a
    CPU core; local shape (tube radius, where a neurite ends or meets another) is what the
    edge features see, the pooled MLP sees how the pieces are arranged.
    """

    def __init__(self, k: int = 12, width: int = 32, hidden: int = 64):
        super().__init__()
        self.k = k
        self.edge = EdgeConv(3, width)
        self.point = nn.Sequential(nn.Linear(width + 3, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * hidden, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 1))

    def forward(self, points: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        if idx is None:
            idx = knn_indices(points, self.k)
        points = canonical_frame(points)  # a rotation/reflection: the kNN graph is unchanged
        h = F.relu(self.edge(points, idx))
        h = self.point(torch.cat([h, points], -1))
        return self.head(torch.cat([h.amax(1), h.mean(1)], -1)).squeeze(-1)


def train_classifier(
    real: tuple[np.ndarray, np.ndarray],
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    share: float = 0.0,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    model_kwargs: dict | None = None,
    progress: bool = False,
) -> PlausibilityNet:
    """Train a ``PlausibilityNet`` on merge candidates.

    ``real`` and ``extra`` are ``(points [n, P, 3], labels [n])`` pools. Each batch holds
    ``round(share * batch_size)`` examples from ``extra`` and the rest from ``real``, so every
    arm sees the same number of examples, steps and schedule (AdamW, cosine decay, random
    rotations). The seed fixes initialisation, batch order and rotations.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = PlausibilityNet(**(model_kwargs or {}))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    n_extra = int(round(share * batch_size)) if extra is not None else 0
    sources = [real] + ([extra] if n_extra else [])
    pools = []
    for pts, labels in sources:
        x = torch.from_numpy(np.ascontiguousarray(pts, dtype=np.float32))
        pools.append((x, knn_indices(x, model.k), torch.from_numpy(np.asarray(labels, np.float32))))
    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="train classifier", leave=False)
    model.train()
    for _ in it:
        xs, ks, ys = [], [], []
        for (px, pk, py), m in zip(pools, (batch_size - n_extra, n_extra)):
            i = torch.randint(len(py), (m,), generator=g)
            xs.append(px[i])
            ks.append(pk[i])
            ys.append(py[i])
        x, idx, y = torch.cat(xs), torch.cat(ks), torch.cat(ys)
        x = x @ random_rotations(len(x), g)  # rotation leaves the kNN graph unchanged
        loss = F.binary_cross_entropy_with_logits(model(x, idx), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model


@torch.no_grad()
def score(model: PlausibilityNet, points: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Probability [n] that each candidate [n, P, 3] is one neuron."""
    model.eval()
    out = []
    for i in range(0, len(points), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(points[i : i + batch_size], dtype=np.float32))
        out.append(torch.sigmoid(model(x)).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)
