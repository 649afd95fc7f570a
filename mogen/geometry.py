"""Small geometric helpers shared across stages: random rotations.

Examples
--------
>>> import torch
>>> R = random_rotations(4, torch.Generator().manual_seed(0))
>>> bool(torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(4, 3, 3), atol=1e-5))
True
>>> bool(torch.allclose(torch.linalg.det(R), torch.ones(4), atol=1e-5))
True
"""

from __future__ import annotations

import torch


def random_rotations(n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
    """``n`` uniform random 3D rotation matrices [n, 3, 3] (normalised Gaussian quaternions)."""
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    R = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], 1).reshape(n, 3, 3)
    return R.to(dtype)
