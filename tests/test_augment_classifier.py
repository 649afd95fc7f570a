"""The plausibility classifier sees clouds in their moment frame: rotations change nothing."""

from __future__ import annotations

import torch

from mogen.evaluate.classifier import PlausibilityNet, canonical_frame
from mogen.geometry import random_rotations


def anisotropic_clouds(n=6, points=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, points, 3, generator=g) * torch.tensor([0.6, 0.25, 0.08])
    return x + torch.tensor([0.1, -0.05, 0.02]) * torch.rand(n, 1, 3, generator=g)  # skewed about the origin


def test_canonical_frame_undoes_rotations_and_reflections():
    x = anisotropic_clouds()
    rot = random_rotations(len(x), torch.Generator().manual_seed(1))
    rot[::2, :, 0] *= -1  # reflections too
    assert torch.allclose(canonical_frame(x), canonical_frame(x @ rot), atol=1e-4)
    # the frame is a rotation/reflection: distances to the origin are kept
    assert torch.allclose(canonical_frame(x).norm(dim=-1), x.norm(dim=-1), atol=1e-5)


def test_classifier_scores_are_rotation_invariant():
    torch.manual_seed(0)
    model = PlausibilityNet().eval()
    x = anisotropic_clouds()
    rot = random_rotations(len(x), torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(model(x), model(x @ rot), atol=1e-4)
