"""Outpainting: known points stay put, exits are found, growth follows a neurite and stops."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mogen.grow import GrowConfig, find_exits, grow, outpaint, replacement_velocity
from mogen.data.conditions import COND_DIM, COND_GROUPS
from mogen.sampling import condition_request
from mogen.errors import UsageError
from mogen.solvers import integrate

ROD_RADIUS = 0.04  # unit-ball units: 0.4 µm at R = 10 µm


class RodOracle(torch.nn.Module):
    """A stand-in generator that knows its data: the surface of an infinite rod along x.

    Its velocity carries each point straight to its nearest point of the rod inside the crop
    ball, roughly as a well-trained flow would for a data set of rod crops centred on the axis."""

    def __init__(self, centre_unit=(0.0, 0.0, 0.0)):
        super().__init__()
        self.config = SimpleNamespace(k=8, cond_dim=COND_DIM, cond_groups=len(COND_GROUPS))
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.centre = torch.tensor(centre_unit)

    def forward(self, x, t, cond, cond_mask, knn=None):
        p = x + self.centre
        yz = p[..., 1:]
        target = torch.cat([p[..., :1].clamp(-0.99, 0.99), ROD_RADIUS * yz / yz.norm(dim=-1, keepdim=True).clamp(min=1e-9)], -1)
        return (target - p) / (1 - t.view(-1, 1, 1)).clamp(min=0.05)


def rod_points(n, rng, lo=-10.0, hi=10.0, radius_um=10.0):
    s, a = rng.uniform(lo, hi, n), rng.uniform(0, 2 * np.pi, n)
    r = ROD_RADIUS * radius_um
    return np.stack([s, r * np.cos(a), r * np.sin(a)], 1)


def test_replacement_holds_known_points_on_their_path():
    x0 = torch.randn(1, 10, 3)
    known = torch.rand(1, 4, 3)
    v = replacement_velocity(lambda x, t: -3 * x, x0[:, :4], known)
    for solver in ("euler", "midpoint", "rk4"):
        x1, _ = integrate(v, x0, 5, solver)
        torch.testing.assert_close(x1[:, :4], known)  # exactly where they belong, whatever the solver
        assert not torch.allclose(x1[:, 4:], x0[:, 4:])  # the free points moved under the field


def test_outpaint_with_the_oracle_completes_the_rod():
    rng = np.random.default_rng(0)
    known = torch.from_numpy(rod_points(400, rng, -10, 0) / 10.0).float()  # the left half of a crop is given
    x = outpaint(RodOracle(), known, n_points=800, steps=10, seed=0)
    torch.testing.assert_close(x[:400], known)
    free = x[400:]
    assert (free[:, 1:].norm(dim=-1) - ROD_RADIUS).abs().max() < 1e-3  # on the rod


def test_exits_of_a_rod_crop():
    rng = np.random.default_rng(1)
    pts = rod_points(2048, rng)
    cfg = GrowConfig()
    exits = find_exits(pts, np.zeros(3), 10.0, np.zeros((0, 3)), 2048, cfg)
    assert len(exits) == 2
    assert sorted(np.round([e[0] for e in exits]).tolist()) == [-9.0, 9.0]  # ~0.9 R out along the axis
    # a crop grown from the left already covers that side: only the right exit is new
    assert len(find_exits(pts, np.zeros(3), 10.0, np.array([[-9.0, 0, 0]]), 2048, cfg)) == 1


def test_grow_follows_the_rod_to_the_length_budget():
    rng = np.random.default_rng(2)
    seed = rod_points(512, rng)
    state = {"data": {"radius_um": 10.0, "points_per_fragment": 512}, "config": {"source": "gaussian", "noise_std": 1.0}}
    cfg = GrowConfig(length_um=40, steps=6, min_exit_frac=0.05)
    grown = grow(RodOracle(), state, cfg, seed_points_um=seed, progress=False)
    assert grown.stop.startswith("length budget") and 40 <= grown.path_um < 60
    centres = grown.centres
    assert np.abs(centres[:, 1:]).max() < 1.0 and centres[:, 0].min() < -15 and centres[:, 0].max() > 15  # both ways
    assert np.abs(np.linalg.norm(grown.points_um[:, 1:], axis=1) - 0.4).max() < 0.1  # every point on the rod (6 steps: not exactly)
    assert set(np.unique(grown.crop_of)) == set(range(len(grown.crops)))
    steps = [np.linalg.norm(centres[i] - centres[c.parent]) for i, c in enumerate(grown.crops) if c.parent >= 0]
    assert 8 < min(steps) and max(steps) < 10  # each next crop sits where the rod leaves the last, ~0.9 R on


def test_conditions_requested_and_refused():
    model = RodOracle()
    cond, mask = condition_request(model, 10.0, "axon", ends=3)
    assert cond[2] == 1 and mask.tolist() == [True, False, False, True, False]
    assert float(cond[13]) == pytest.approx(np.log1p(3) / np.log(9))
    with pytest.raises(UsageError, match="type"):
        condition_request(model, 10.0, "spine")
    with pytest.raises(UsageError, match="caliber"):
        condition_request(model, 10.0, caliber_um=-0.3)


def test_grow_command_refuses_bad_arguments_before_work(tmp_path):
    from mogen.cli import main

    args = ["grow", "--ckpt", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o")]
    assert main(args + ["--length-um", "-5"]) == 2
    assert main(args + ["--seed-from", "nowhere.swc"]) == 2
    assert main(args + ["--shell", "1.5"]) == 2
    assert not (tmp_path / "o").exists()


def test_growing_along_a_real_surface_leaves_no_seams():
    from mogen.data.surface import TubeSurface
    from mogen.grow import seam_quality, surface_generator

    rng = np.random.default_rng(3)
    # a gently bending tube, 120 µm long, radius 0.5 µm
    s = np.linspace(0, 120, 121)
    axis_pts = np.stack([s, 10 * np.sin(s / 40), np.zeros_like(s)], 1)
    surface = TubeSurface(axis_pts[:-1], axis_pts[1:], np.full(120, 0.5), np.full(120, 0.5))
    anchor = axis_pts[60]
    from mogen.data.fragments import Cropper

    seed, _ = Cropper(surface, 10.0).crop(anchor, 1024, rng)
    state = {"data": {"radius_um": 10.0, "points_per_fragment": 1024}, "config": {"source": "gaussian"}}
    grown = grow(RodOracle(), state, GrowConfig(length_um=80), seed, progress=False,
                 generate=surface_generator(surface, anchor, 10.0, 1024, seed=0))
    assert grown.stop.startswith("length budget")
    q = seam_quality(grown.points_um, grown.crop_of)
    assert 0.85 < q["density_ratio"] < 1.2 and 0.7 < q["thickness_ratio"] < 1.3
