"""Transformer building blocks: attention with QK-norm, MLP, pre-norm residual blocks.

All blocks are pre-norm (RMSNorm) residual blocks. Queries and keys are RMS-normalised
per head (QK-norm) so attention logits stay bounded without a learning-rate warm-up
fight. Cross-attention lets tokens of one width read tokens of another; the attention
width (``inner``) can be smaller than the query width, which keeps the cost of the
point side (N tokens) low.

Examples
--------
>>> import torch
>>> blk = CrossBlock(dim=32, context_dim=64, heads=4)
>>> blk(torch.randn(2, 10, 32), torch.randn(2, 5, 64)).shape
torch.Size([2, 10, 32])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention of queries ``x`` over ``context`` with QK-norm."""

    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 4, inner: int | None = None):
        super().__init__()
        context_dim = context_dim or dim
        inner = inner or dim
        if inner % heads:
            raise ValueError(f"attention width {inner} is not divisible by {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * inner, bias=False)
        self.q_norm = nn.RMSNorm(inner // heads)
        self.k_norm = nn.RMSNorm(inner // heads)
        self.out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        m = context.shape[1]
        q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.to_kv(context).view(b, m, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, -1))


class MLP(nn.Sequential):
    def __init__(self, dim: int, ratio: float = 4.0):
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))


class CrossBlock(nn.Module):
    """``x <- x + Attn(norm x, norm context); x <- x + MLP(norm x)``."""

    def __init__(self, dim: int, context_dim: int, heads: int, inner: int | None = None, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm = nn.RMSNorm(dim)
        self.norm_context = nn.RMSNorm(context_dim)
        self.attn = Attention(dim, context_dim, heads, inner)
        self.norm_mlp = nn.RMSNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm(x), self.norm_context(context))
        return x + self.mlp(self.norm_mlp(x))


class SelfBlock(nn.Module):
    """``x <- x + Attn(norm x, norm x); x <- x + MLP(norm x)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm = nn.RMSNorm(dim)
        self.attn = Attention(dim, dim, heads)
        self.norm_mlp = nn.RMSNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        x = x + self.attn(h, h)
        return x + self.mlp(self.norm_mlp(x))


class KnnAttention(nn.Module):
    """Each point attends to its k nearest neighbours (a fixed-k graph, so dense gathers, no scatter).

    Keys and values are the neighbours' tokens plus a linear map of their relative position
    (already scaled to O(1)), so a point sees where its neighbours are *and* what they are about
    to do: the latent bottleneck alone cannot tell two nearby points apart finely enough to
    space them out. Cost O(N k d), no O(N^2).
    """

    def __init__(self, dim: int, heads: int = 2, inner: int = 16):
        super().__init__()
        if inner % heads:
            raise ValueError(f"attention width {inner} is not divisible by {heads} heads")
        self.heads, self.inner = heads, inner
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.pos = nn.Linear(3, 2 * inner, bias=False)
        self.out = nn.Linear(inner, dim, bias=False)

    def forward(self, h: torch.Tensor, idx: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
        """``h`` [B, N, D] tokens, ``idx`` [B, N, k] neighbour indices, ``rel`` [B, N, k, 3] their offsets."""
        b, n, _ = h.shape
        k, d = idx.shape[-1], self.inner
        q, kv = self.to_qkv(h).split([d, 2 * d], -1)
        flat = idx.reshape(b, n * k, 1).expand(-1, -1, 2 * d)
        kv = kv.gather(1, flat).view(b, n, k, 2 * d) + self.pos(rel)
        keys, values = kv.view(b, n, k, 2, self.heads, d // self.heads).unbind(3)  # [B, N, k, H, d/H]
        q = q.view(b, n, 1, self.heads, d // self.heads)
        w = ((q * keys).sum(-1) / math.sqrt(d // self.heads)).softmax(2)  # [B, N, k, H]
        y = (w.unsqueeze(-1) * values).sum(2)  # [B, N, H, d/H]
        return self.out(y.reshape(b, n, d))


class LocalBlock(nn.Module):
    """``h <- h + KnnAttn(norm h); h <- h + MLP(norm h)``: point-to-point exchange among neighbours."""

    def __init__(self, dim: int, heads: int = 2, inner: int = 16, mlp_ratio: float = 2.0):
        super().__init__()
        self.norm = nn.RMSNorm(dim)
        self.attn = KnnAttention(dim, heads, inner)
        self.norm_mlp = nn.RMSNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, h: torch.Tensor, idx: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.norm(h), idx, rel)
        return h + self.mlp(self.norm_mlp(h))


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of times ``t`` in [0, 1] (scaled by 1000 as in DDPM/DiT): [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], -1)
