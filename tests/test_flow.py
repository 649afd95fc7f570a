"""Flow matching and ODE solvers: closed-form checks."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from mogen.flow import cosine_warp, drop_conditions, interpolate, pair_noise, sample_time
from mogen.solvers import CALLS_PER_STEP, integrate, steps_for_calls, time_grid


def _field(x, t):
    # dx/dt = x * cos(t) + t  (time-dependent, non-linear in t; solution known in closed form)
    return x * torch.cos(t)[:, None, None] + t[:, None, None]


def _exact(x0):
    # x(t) = e^{sin t} (x0 + \int_0^t s e^{-sin s} ds); integral by dense quadrature.
    s = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    integral = torch.trapezoid(s * torch.exp(-torch.sin(s)), s)
    return math.exp(math.sin(1.0)) * (x0 + integral)


@pytest.mark.parametrize("solver,order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_solver_order(solver, order):
    x0 = torch.linspace(-1, 1, 12, dtype=torch.float64).view(2, 2, 3)
    errors = []
    for steps in (8, 16, 32):
        x1, calls = integrate(_field, x0, steps, solver)
        assert calls == steps * CALLS_PER_STEP[solver]
        errors.append((x1 - _exact(x0)).abs().max().item())
    rates = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert all(abs(r - order) < 0.3 for r in rates), (solver, errors, rates)


@pytest.mark.parametrize("grid", ["uniform", "cosine", "late"])
def test_grids_converge_and_dopri5_is_accurate(grid):
    x0 = torch.randn(3, 5, 3, dtype=torch.float64)
    x1, _ = integrate(_field, x0, 32, "rk4", grid)
    assert torch.allclose(x1, _exact(x0), atol=1e-6)
    x1, calls = integrate(_field, x0, solver="dopri5", rtol=1e-8, atol=1e-8)
    assert torch.allclose(x1, _exact(x0), atol=1e-6) and calls > 6


def test_time_grid_and_calls():
    for kind in ("uniform", "cosine", "late"):
        g = time_grid(10, kind)
        assert g[0] == 0 and g[-1] == 1 and (g.diff() > 0).all()
    cos = time_grid(10, "cosine").diff()
    assert cos[0] < cos[5] and cos[-1] < cos[5]  # small steps at both ends
    late = time_grid(10, "late").diff()
    assert late[-1] < late[0]
    assert steps_for_calls("midpoint", 20) == 10 and steps_for_calls("rk4", 200) == 50
    with pytest.raises(ValueError):
        integrate(_field, torch.zeros(1, 1, 3), 4, "leapfrog")


def test_straight_path_is_integrated_exactly():
    # The linear path's velocity x1 - x0 is constant: one Euler step lands on x1.
    x0, x1 = torch.randn(2, 7, 3), torch.randn(2, 7, 3)
    xt, v = interpolate(x0, x1, torch.tensor([0.0, 0.0]))
    out, _ = integrate(lambda x, t: v, xt, 1, "euler")
    assert torch.allclose(out, x1, atol=1e-6)


def test_pair_noise_is_a_good_permutation():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(1, 256, generator=g) * 2 - 1
    x1 = torch.stack([s, 0.3 * torch.sin(3 * s), 0.1 * s**2], -1) + 0.02 * torch.randn(1, 256, 3, generator=g)
    x0 = torch.randn(1, 256, 3, generator=g)
    paired = pair_noise(x1, x0)
    # the same points, reordered
    a = paired[0][np.lexsort(paired[0].T.numpy())]
    b = x0[0][np.lexsort(x0[0].T.numpy())]
    assert torch.equal(a, b)
    cost = lambda z: ((z - x1) ** 2).sum().item()  # noqa: E731
    c = torch.cdist(x1[0].double(), x0[0].double()).pow(2).numpy()
    r, col = linear_sum_assignment(c)
    optimal = c[r, col].sum()
    assert optimal <= cost(paired) < 1.15 * optimal
    assert cost(paired) < 0.75 * cost(x0)
    # one leaf holding the whole cloud is the exact assignment
    assert math.isclose(cost(pair_noise(x1, x0, leaf=256)), optimal, rel_tol=1e-5)


def test_time_samplers_and_condition_dropout():
    g = torch.Generator().manual_seed(0)
    for kind in ("uniform", "cosine", "logit_normal"):
        t = sample_time(20_000, kind, g)
        assert 0 <= t.min() and t.max() <= 1
    u, c = sample_time(20_000, "uniform", g), sample_time(20_000, "cosine", g)
    ends = lambda t: ((t < 0.1) | (t > 0.9)).float().mean()  # noqa: E731
    assert ends(c) > 1.5 * ends(u)  # U-shaped: more mass at the ends
    assert torch.allclose(cosine_warp(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([0.0, 0.5, 1.0]))
    mask = drop_conditions(20_000, 4, p_group=0.5, p_all=0.2, generator=g)
    assert abs((~mask.any(1)).float().mean() - (0.2 + 0.8 / 16)) < 0.02
    assert abs(mask.float().mean() - 0.8 * 0.5) < 0.02


def test_squash_ball_keeps_the_inside_and_bounds_the_rest():
    from mogen.flow import BALL_KNEE, squash_ball

    g = torch.Generator().manual_seed(0)
    y = torch.randn(4000, 3, generator=g, dtype=torch.float64) * 2
    r, s = y.norm(dim=-1), squash_ball(y).norm(dim=-1)
    inside = r <= BALL_KNEE
    assert torch.equal(squash_ball(y)[inside], y[inside])
    assert (s < 1).all() and (s[~inside] > BALL_KNEE).all()
    order = r.argsort()
    assert (s[order].diff() >= -1e-12).all()  # radially monotone: no folding
    assert torch.allclose(squash_ball(y) / s[:, None], y / r[:, None])  # directions kept
    # continuous with slope 1 at the knee
    eps = 1e-6
    knee = torch.tensor([[BALL_KNEE + eps, 0.0, 0.0]], dtype=torch.float64)
    assert abs(float(squash_ball(knee)[0, 0]) - (BALL_KNEE + eps)) < 1e-9


def test_ball_endpoint_field_ends_inside_the_ball_with_a_last_euler_step():
    from mogen.flow import ball_velocity

    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 500, 3, generator=g) * 1.5
    wild = lambda x, t: ball_velocity(3 * x + torch.sin(5 * x), x, t)  # noqa: E731  (drives points outward)
    free, _ = integrate(lambda x, t: 3 * x + torch.sin(5 * x), x0, 10, "midpoint")
    assert (free.norm(dim=-1) > 1).float().mean() > 0.5
    inside, calls = integrate(wild, x0, 10, "midpoint", last_euler=True)
    assert calls == 2 * 9 + 1
    assert (inside.norm(dim=-1) < 1).all()
    # inside the knee the ball field is the plain field
    x, t = torch.rand(2, 50, 3) * 0.2, torch.tensor([0.3, 0.9])
    v = torch.randn(2, 50, 3) * 0.1
    assert torch.allclose(ball_velocity(v, x, t), v, atol=1e-5)
