"""Flow matching: the probability path, time sampling, noise-to-point pairing, the loss.

The path is linear: ``x_t = (1 - t) x0 + t x1`` with noise ``x0 ~ N(0, sigma^2 I)`` at
t = 0 and data ``x1`` at t = 1; the network regresses the velocity ``x1 - x0`` (MSE).

Two options make the learnt flow straighter, so that few ODE steps suffice:

- **Pairing** (``pair_noise``): inside each cloud, the N noise points are matched to the
  N data points so that the total squared distance is (approximately) minimal. Any
  matching is a valid coupling (a point cloud is a set), and a near-optimal one gives
  paths that do not cross, i.e. a velocity field that is nearly constant in time.
  Exact assignment (Hungarian, O(N^3)) is too slow for 2,048 points per step, so a
  k-d bisection matching is used: both clouds are split at the median of their joint
  principal axis, recursively, with equal counts on each side; leaves are matched
  exactly with ``scipy.optimize.linear_sum_assignment``.
- **Time warp** (``sample_time``): training times concentrated near t = 0 and t = 1
  (MoGen's cosine / U-shaped warp), where the velocity is hardest to predict.

Samples inside the crop ball by construction (``ball_velocity``): a velocity v at (x_t, t)
implies the one-step endpoint ``x1_hat = x_t + (1 - t) v`` (the network's guess of the data).
Squashing that endpoint into the unit ball with a smooth radial map (``squash_ball``: the
identity inside radius ``knee``, saturating below 1 outside) and turning it back into a
velocity ``(x1_hat - x_t) / (1 - t)`` gives a field whose Euler steps are convex combinations
of x_t and a point inside the ball; a sampler whose last step is an Euler step to t = 1
returns x1_hat itself, so no point can end outside the crop. The loss is unchanged (the same
velocity MSE), and so is the field wherever the endpoint lies within ``knee``.

Conditions are dropped at random (``drop_conditions``) so that the same network is
also an unconditional model, which classifier-free guidance needs.

Examples
--------
>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> x1 = torch.rand(2, 256, 3)
>>> x0 = torch.randn(2, 256, 3, generator=g)
>>> paired = pair_noise(x1, x0)
>>> bool(((paired - x1) ** 2).sum() < ((x0 - x1) ** 2).sum())
True
>>> sample_time(4, "cosine", generator=g).shape
torch.Size([4])
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from mogen.data.conditions import cloud_moments

TIME_SAMPLERS = ("uniform", "cosine", "logit_normal")


def cosine_warp(u: torch.Tensor) -> torch.Tensor:
    """Map uniform ``u`` in [0, 1] to ``t = (1 - cos(pi u)) / 2``.

    Monotone with t(0)=0, t(1)=1; uniform u gives an arcsine (U-shaped) density of t.
    Used both to sample training times and as an ODE time grid.
    """
    return 0.5 * (1.0 - torch.cos(math.pi * u))


def sample_time(n: int, kind: str = "uniform", generator: torch.Generator | None = None) -> torch.Tensor:
    """Training times t in [0, 1], shape [n]: ``uniform``, ``cosine`` (U-shaped) or ``logit_normal``.

    ``logit_normal`` is ``sigmoid(m + s z)``, z ~ N(0, 1), with m = 0, s = 1 unless written
    ``logit_normal:m:s`` (e.g. ``logit_normal:-0.5:1``: more weight on early, ambiguous times).
    """
    if kind == "uniform":
        return torch.rand(n, generator=generator)
    if kind == "cosine":
        return cosine_warp(torch.rand(n, generator=generator))
    if kind.split(":")[0] == "logit_normal":
        m, s = _logit_normal_params(kind)
        return torch.sigmoid(m + s * torch.randn(n, generator=generator))
    raise ValueError(f"unknown time sampler {kind!r}; choose from {TIME_SAMPLERS} (logit_normal:m:s)")


def _logit_normal_params(kind: str) -> tuple[float, float]:
    parts = kind.split(":")[1:]
    try:
        m, s = (float(parts[0]), float(parts[1])) if parts else (0.0, 1.0)
    except (ValueError, IndexError):
        raise ValueError(f"time sampler {kind!r}: write logit_normal or logit_normal:MEAN:STD") from None
    if not s > 0:
        raise ValueError(f"time sampler {kind!r}: the std must be positive")
    return m, s


def pair_noise(x1: torch.Tensor, x0: torch.Tensor, leaf: int = 16) -> torch.Tensor:
    """Reorder noise points ``x0`` [B, N, 3] to an approximately optimal match of ``x1``.

    Returns ``x0`` permuted within each cloud so that ``x0[b, i]`` is the noise point
    paired with data point ``x1[b, i]``. See the module docstring for the method.
    ``leaf`` is the group size matched exactly (0 or 1: pure bisection).
    """
    b, n, d = x1.shape
    idx1 = torch.arange(n).expand(b, n).clone()
    idx0 = idx1.clone()
    groups = 1
    # Bisect while both halves stay equal in size and bigger than a leaf.
    while n % 2 == 0 and n > max(leaf, 1):
        a = x1.gather(1, idx1[..., None].expand(-1, -1, d)).view(b, groups, n, d)
        z = x0.gather(1, idx0[..., None].expand(-1, -1, d)).view(b, groups, n, d)
        both = torch.cat([a, z], 2)
        centred = both - both.mean(2, keepdim=True)
        cov = centred.transpose(-1, -2) @ centred
        axis = torch.linalg.eigh(cov.double()).eigenvectors[..., -1].to(x1.dtype)  # principal axis
        order_a = (a @ axis[..., None]).squeeze(-1).argsort(-1)
        order_z = (z @ axis[..., None]).squeeze(-1).argsort(-1)
        idx1 = idx1.view(b, groups, n).gather(-1, order_a).view(b, -1)
        idx0 = idx0.view(b, groups, n).gather(-1, order_z).view(b, -1)
        groups, n = groups * 2, n // 2
    if n > 1 and leaf > 1:
        idx0 = _match_leaves(x1, x0, idx1, idx0, groups, n)
    paired = torch.empty_like(x0)
    paired.scatter_(1, idx1[..., None].expand(-1, -1, d), x0.gather(1, idx0[..., None].expand(-1, -1, d)))
    return paired


def _match_leaves(x1, x0, idx1, idx0, groups, n):
    """Exact assignment inside each leaf group; returns the reordered ``idx0``."""
    b, _, d = x1.shape
    a = x1.gather(1, idx1[..., None].expand(-1, -1, d)).view(b * groups, n, d)
    z = x0.gather(1, idx0[..., None].expand(-1, -1, d)).view(b * groups, n, d)
    cost = torch.cdist(a.double(), z.double()).pow_(2).numpy()
    cols = np.stack([linear_sum_assignment(c)[1] for c in cost])
    return idx0.view(b * groups, n).gather(1, torch.from_numpy(cols)).view(b, -1)


SOURCES = ("gaussian", "moments")
SELF_COND_P = 0.5  # fraction of training batches that see a previous estimate of x1


def source_noise(
    shape, source: str = "gaussian", noise_std: float = 1.0, centroid=None, cov=None, generator=None
) -> torch.Tensor:
    """Noise clouds [B, N, 3] at t = 0.

    ``gaussian``: N(0, noise_std^2 I). ``moments``: N(centroid, noise_std^2 cov) per
    cloud, a Gaussian with the fragment's own first two moments, so position, extent and
    orientation are right from the start and the flow only has to form the local shape.
    """
    z = torch.randn(shape, generator=generator)
    if source == "gaussian":
        return z * noise_std
    if source != "moments":
        raise ValueError(f"unknown noise source {source!r}; choose from {SOURCES}")
    if centroid is None or cov is None:
        raise ValueError("source='moments' needs each cloud's centroid and covariance")
    eye = torch.eye(3, dtype=torch.float64)
    chol = torch.linalg.cholesky(cov.double().cpu() + 1e-6 * eye).to(z.dtype)
    return centroid.cpu().to(z.dtype).unsqueeze(-2) + noise_std * z @ chol.transpose(-1, -2)


BALL_KNEE = 0.9
BALL_OUTER = 1.0 - 1e-4  # squashed radii stay below this, so float error cannot cross the sphere


def squash_ball(y: torch.Tensor, knee: float = BALL_KNEE, outer: float = BALL_OUTER) -> torch.Tensor:
    """Smooth radial map of points [..., 3] into the ball of radius ``outer``.

    Radii up to ``knee`` are kept; larger ones become ``knee + (outer - knee) tanh((r - knee) / (outer - knee))``
    (value and slope continuous at the knee), so the map is monotone and C1.

    >>> y = torch.tensor([[0.5, 0.0, 0.0], [3.0, 4.0, 0.0]])
    >>> squash_ball(y).norm(dim=-1).tolist()[0], bool(squash_ball(y).norm(dim=-1)[1] < 1)
    (0.5, True)
    """
    r = y.norm(dim=-1, keepdim=True)
    width = outer - knee
    squashed = knee + width * torch.tanh((r - knee).clamp_min(0) / width)
    return torch.where(r > knee, y * (squashed / r.clamp_min(1e-12)), y)


def ball_velocity(v: torch.Tensor, x: torch.Tensor, t: torch.Tensor, min_gap: float = 1e-3) -> torch.Tensor:
    """The velocity at (x [B, N, 3], t [B]) whose one-step endpoint is ``squash_ball(x + (1 - t) v)``.

    Equal to ``v`` wherever that endpoint lies within the knee; ``1 - t`` is floored at
    ``min_gap`` so that the field stays finite at t = 1.
    """
    gap = (1 - t).clamp_min(min_gap).view(-1, *([1] * (x.dim() - 1))).to(v.dtype)
    return (squash_ball(x + gap * v) - x) / gap


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Point on the linear path and its velocity: ``(x_t, x1 - x0)``; ``t`` is [B]."""
    tt = t.view(-1, *([1] * (x1.dim() - 1))).to(x1.dtype)
    return (1 - tt) * x0 + tt * x1, x1 - x0


def drop_conditions(
    batch: int,
    groups: int,
    p_group: float = 0.5,
    p_all: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random condition mask [batch, groups] (True = group given to the network).

    Each group is dropped with probability ``p_group``; with probability ``p_all`` all
    are dropped (the unconditional model used by classifier-free guidance).
    """
    keep = torch.rand(batch, groups, generator=generator) >= p_group
    none = torch.rand(batch, 1, generator=generator) < p_all
    return keep & ~none


def flow_matching_loss(
    model,
    x1: torch.Tensor,
    cond: torch.Tensor,
    cond_mask: torch.Tensor,
    generator: torch.Generator | None = None,
    time_sampler: str = "uniform",
    noise_std: float = 1.0,
    pair: bool = False,
    knn: torch.Tensor | None = None,
    source: str = "gaussian",
    points: int = 0,
) -> torch.Tensor:
    """Mean squared error between the predicted and the path velocity for one batch.

    ``x1`` [B, N, 3] is the data (unit-ball coordinates). All randomness (noise, time,
    pairing) comes from ``generator`` so that training is reproducible step by step.
    ``points`` > 0 trains on that many random points of each cloud (a sparser sample of
    the same surface: the network's kNN features are rescaled to the full density).
    """
    if 0 < points < x1.shape[1]:
        keep = torch.rand(x1.shape[:2], generator=generator).argsort(1)[:, :points].to(x1.device)
        x1 = x1.gather(1, keep[..., None].expand(-1, -1, x1.shape[-1]))
    b = x1.shape[0]
    centroid, cov = cloud_moments(x1.detach().float()) if source == "moments" else (None, None)
    x0 = source_noise(x1.shape, source, noise_std, centroid, cov, generator).to(x1)
    if pair:
        x0 = pair_noise(x1.detach().cpu(), x0.cpu()).to(x1)
    t = sample_time(b, time_sampler, generator).to(x1)
    xt, target = interpolate(x0, x1, t)
    net = getattr(model, "module", model)  # DistributedDataParallel wraps the network
    extra = {}
    if getattr(net.config, "self_cond", False):
        # Self-conditioning (Chen et al., 2023): half of the batches first estimate x1 without
        # gradient and train the network to refine that estimate, as it will at sampling time.
        from mogen.knn import knn_indices

        knn = knn_indices(xt, net.config.k) if knn is None else knn
        if torch.rand(1, generator=generator).item() < SELF_COND_P:
            with torch.no_grad():
                v0 = net(xt, t, cond, cond_mask, knn=knn)
            extra["x1_prev"] = (xt + (1 - t).view(-1, 1, 1) * v0).detach()
    pred = model(xt, t, cond, cond_mask, knn=knn, **extra)
    return (pred.float() - target.float()).pow(2).mean()
