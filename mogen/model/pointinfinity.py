"""The velocity network v(x_t, t, cond): a point-cloud transformer with latent tokens.

Point tokens never attend to each other (that would cost O(N^2)). Instead each block

1. **reads**: a fixed set of learned latent tokens cross-attends to the points,
2. **processes**: the latents self-attend (``latent_blocks`` times),
3. **writes**: the points cross-attend to the latents,

so a call costs O(N * L) for N points and L latents (PointInfinity, MoGen). Each point's
input is its position plus the relative coordinates of its k nearest neighbours, which
gives the network the local geometry that the latents cannot carry at full resolution.
Time and the condition vector enter as two extra latent tokens (and are also added to
the point embedding). Nothing depends on point order: the network is
permutation-equivariant in the points.

Examples
--------
>>> import torch
>>> net = VelocityNet(VelocityNet.presets["tiny"])
>>> x = torch.randn(2, 256, 3)
>>> v = net(x, torch.rand(2), torch.zeros(2, 15), torch.zeros(2, 5, dtype=torch.bool))
>>> v.shape
torch.Size([2, 256, 3])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mogen.model.blocks import CrossBlock, LocalBlock, SelfBlock, timestep_embedding
from mogen.data.conditions import COND_DIM, COND_GROUPS
from mogen.flow import ball_velocity
from mogen.knn import knn_indices, knn_relative
from mogen.model.registry import register


ENDPOINTS = ("free", "ball")


@dataclass
class ModelConfig:
    point_dim: int = 64
    latent_dim: int = 128
    latents: int = 64
    blocks: int = 1
    latent_blocks: int = 4  # latent self-attention blocks per block
    heads: int = 4
    k: int = 16  # neighbours whose relative coordinates each point sees
    mlp_ratio: float = 4.0  # latent MLPs
    point_mlp_ratio: float = 2.0  # point MLPs: these run N times, so they dominate the cost
    cond_dim: int = COND_DIM
    cond_groups: int = len(COND_GROUPS)
    # Relative kNN coordinates are divided by this, so they are O(1) at the data end
    # (mean neighbour distance of 2,048 tube-surface points in the unit ball ~ 0.03).
    knn_scale: float = 0.05
    # Points per cloud during training: neighbour distances shrink like N^-1/2 on a
    # surface, so other N are rescaled to look like this density.
    reference_points: int = 2048
    # Point-to-point blocks after the last write: each point attends to its k neighbours'
    # tokens (mogen.model.blocks.LocalBlock), so neighbours can coordinate their spacing.
    local_layers: int = 0
    local_dim: int = 16  # attention width of those blocks (their cost is N k local_dim)
    # "free": the output is the velocity. "ball": the velocity whose one-step endpoint
    # x + (1 - t) v is squashed into the crop ball (mogen.flow.ball_velocity), so samples
    # cannot leave the crop. The default: without it ~9% of sampled points left the ball
    # and feature-MMD was 1.6x worse (BENCHMARKS.md, Sample quality).
    endpoint: str = "ball"
    # Self-conditioning: each point also sees the network's previous estimate of the data
    # (its own x1_hat and its neighbours' relative to it), so a sampling trajectory keeps
    # refining one structure instead of re-averaging all structures the noise allows.
    self_cond: bool = False
    # Fourier features of each point's position: sin/cos of 2^j pi x for j < fourier_octaves.
    # A linear embedding of raw xyz is smooth at the crop's scale; neurite tubes are 20-50x
    # thinner, so the point queries need high-frequency position features to say which side
    # of a thin tube they are on (Tancik et al., 2020). 0: raw coordinates only.
    fourier_octaves: int = 0


PRESETS = {
    # ~1.1M parameters: trains on a laptop CPU.
    "tiny": ModelConfig(),
    # MoGen-size, ~10M parameters.
    "base": ModelConfig(
        point_dim=128, latent_dim=256, latents=256, blocks=4, latent_blocks=2, heads=8, point_mlp_ratio=4.0
    ),
}


def fourier_features(x: torch.Tensor, octaves: int) -> torch.Tensor:
    """``[sin, cos](2^j pi x)`` for j < ``octaves``, per coordinate: [..., 6 * octaves].

    >>> fourier_features(torch.zeros(1, 3), 2).tolist()
    [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]
    """
    freqs = math.pi * 2.0 ** torch.arange(octaves, device=x.device, dtype=x.dtype)
    args = (x.unsqueeze(-1) * freqs).flatten(-2)  # [..., 3 * octaves]
    return torch.cat([args.sin(), args.cos()], -1)


@register("pointinfinity", presets=PRESETS)
class VelocityNet(nn.Module):
    Config = ModelConfig

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = self.config = config
        self.point_in = nn.Linear((3 + 3 * c.k) * (2 if c.self_cond else 1) + 6 * c.fourier_octaves, c.point_dim)
        self.time_mlp = nn.Sequential(
            nn.Linear(c.latent_dim, c.latent_dim), nn.SiLU(), nn.Linear(c.latent_dim, c.latent_dim)
        )
        self.time_to_points = nn.Linear(c.latent_dim, c.point_dim)
        self.cond_to_points = nn.Linear(c.latent_dim, c.point_dim)
        self.cond_mlp = nn.Sequential(
            nn.Linear(c.cond_dim + c.cond_groups, c.latent_dim), nn.SiLU(), nn.Linear(c.latent_dim, c.latent_dim)
        )
        self.latents = nn.Parameter(torch.randn(c.latents, c.latent_dim) * 0.02)
        # Read attention works at the (narrower) point width: its keys/values are
        # projected from N point tokens, the dominant cost.
        self.read = nn.ModuleList(
            CrossBlock(c.latent_dim, c.point_dim, c.heads, inner=c.point_dim, mlp_ratio=c.mlp_ratio)
            for _ in range(c.blocks)
        )
        self.process = nn.ModuleList(
            nn.ModuleList(SelfBlock(c.latent_dim, c.heads, c.mlp_ratio) for _ in range(c.latent_blocks))
            for _ in range(c.blocks)
        )
        self.write = nn.ModuleList(
            CrossBlock(c.point_dim, c.latent_dim, c.heads, inner=c.point_dim, mlp_ratio=c.point_mlp_ratio)
            for _ in range(c.blocks)
        )
        self.local = nn.ModuleList(LocalBlock(c.point_dim, 2, c.local_dim, c.point_mlp_ratio) for _ in range(c.local_layers))
        if c.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {c.endpoint!r}; choose from {ENDPOINTS}")
        self.out_norm = nn.RMSNorm(c.point_dim)
        self.out = nn.Linear(c.point_dim, 3)
        # Zero output: the untrained network predicts zero velocity, a calm start.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def knn_features(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Scaled relative coordinates of each point's k neighbours: [B, N, k, 3]."""
        c = self.config
        scale = c.knn_scale * math.sqrt(c.reference_points / x.shape[1])
        return knn_relative(x, idx) / scale

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        cond_mask: torch.Tensor,
        knn: torch.Tensor | None = None,
        x1_prev: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity at points ``x`` [B, N, 3], times ``t`` [B].

        ``cond`` [B, 15] is the condition vector, ``cond_mask`` [B, 5] (bool) says which
        of its groups are given; the others are zeroed here, so callers can pass
        anything there. ``knn`` [B, N, k] may pass precomputed neighbour indices.
        ``x1_prev`` [B, N, 3]: the previous estimate of the data (self-conditioning models
        only; None: no estimate yet).
        """
        c = self.config
        b = x.shape[0]
        t = t.expand(b) if t.dim() == 1 else t.reshape(1).expand(b)
        temb = self.time_mlp(timestep_embedding(t, c.latent_dim))
        mask = cond_mask.to(x.dtype)
        keep = torch.cat([mask[:, i : i + 1].expand(-1, s.stop - s.start) for i, s in enumerate(COND_GROUPS.values())], 1)
        cemb = self.cond_mlp(torch.cat([cond * keep, mask], 1))

        idx = knn_indices(x, c.k) if knn is None else knn
        rel = self.knn_features(x, idx)
        feats = [x, rel.flatten(2)]
        if c.fourier_octaves:
            feats.append(fourier_features(x, c.fourier_octaves))
        if c.self_cond:
            if x1_prev is None:
                feats.append(torch.zeros_like(x).repeat(1, 1, 1 + c.k))
            else:
                feats += [x1_prev - x, self.knn_features(x1_prev, idx).flatten(2)]
        h = self.point_in(torch.cat(feats, -1))
        h = h + (self.time_to_points(temb) + self.cond_to_points(cemb)).unsqueeze(1)
        z = torch.cat([temb[:, None], cemb[:, None], self.latents.expand(b, -1, -1)], 1)
        for read, process, write in zip(self.read, self.process, self.write):
            z = read(z, h)
            for blk in process:
                z = blk(z)
            h = write(h, z)
        for blk in self.local:
            h = blk(h, idx, rel)
        v = self.out(self.out_norm(h))
        return ball_velocity(v, x, t) if c.endpoint == "ball" else v

