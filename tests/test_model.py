"""Velocity network: kNN features, permutation equivariance, conditioning, sizes."""

import pytest
import torch

from mogen.knn import knn_indices, knn_indices_bruteforce, knn_relative
from mogen.model import build_model, count_parameters


def _net(**overrides):
    torch.manual_seed(0)
    net = build_model("pointinfinity", "tiny", **overrides).eval()
    # The output layer starts at zero (constant output); randomise it so tests can fail.
    torch.nn.init.normal_(net.out.weight, std=0.5)
    return net


def test_knn_matches_bruteforce():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 700, 3, generator=g)
    for k in (1, 8, 16):
        assert torch.equal(knn_indices(x, k), knn_indices_bruteforce(x, k))
    assert torch.equal(knn_indices(x[0], 4), knn_indices_bruteforce(x[0], 4))  # single cloud
    with pytest.raises(ValueError, match="more than k points"):
        knn_indices(x[:, :5], 5)


def test_knn_with_duplicate_points_excludes_self():
    x = torch.rand(1, 100, 3)
    x[0, 50:] = x[0, :50]  # every point has an exact twin
    idx = knn_indices(x, 3)
    assert not (idx == torch.arange(100)[None, :, None]).any()
    assert torch.allclose(knn_relative(x, idx)[..., 0, :], torch.zeros(1, 100, 3))  # twin first


def test_knn_relative_is_differentiable():
    x = torch.rand(1, 50, 3, requires_grad=True)
    rel = knn_relative(x, knn_indices(x, 4))
    rel.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_permutation_equivariance():
    net = _net()
    x = torch.randn(2, 300, 3) * 0.5
    t, cond = torch.tensor([0.3, 0.8]), torch.randn(2, 15)
    mask = torch.tensor([[True, False, True, True, True], [False, False, False, False, False]])
    perm = torch.randperm(300)
    with torch.no_grad():
        v = net(x, t, cond, mask)
        v_perm = net(x[:, perm], t, cond, mask)
    assert v.abs().mean() > 1e-3
    assert torch.allclose(v[:, perm], v_perm, atol=1e-5)


def test_time_and_conditions_matter_and_masking_hides_groups():
    net = _net()
    x = torch.randn(1, 200, 3)
    cond, other = torch.randn(1, 15), torch.randn(1, 15)
    given = torch.tensor([[True, False, False, False, False]])  # only the type group (dims 0:4)
    with torch.no_grad():
        v = net(x, torch.tensor([0.5]), cond, given)
        assert not torch.allclose(v, net(x, torch.tensor([0.9]), cond, given), atol=1e-4)
        other_type = other.clone()
        other_type[:, 4:] = cond[:, 4:]
        assert not torch.allclose(v, net(x, torch.tensor([0.5]), other_type, given), atol=1e-4)
        # changing masked-out groups (centroid, cov, ends, caliber) changes nothing
        hidden = cond.clone()
        hidden[:, 4:] = other[:, 4:]
        assert torch.allclose(v, net(x, torch.tensor([0.5]), hidden, given), atol=1e-6)


def test_zero_initialised_output_and_any_point_count():
    net = build_model("pointinfinity", "tiny", endpoint="free").eval()
    ball = build_model("pointinfinity", "tiny").eval()  # the default: endpoints squashed into the crop ball
    for n in (64, 1000):
        x, t = torch.randn(2, n, 3), torch.rand(2)
        cond, mask = torch.zeros(2, 15), torch.zeros(2, 5, dtype=torch.bool)
        v = net(x, t, cond, mask)
        assert v.shape == (2, n, 3) and torch.count_nonzero(v) == 0
        end = x + (1 - t)[:, None, None] * ball(x, t, cond, mask)
        assert (end.norm(dim=-1) < 1 + 1e-4).all()


def test_named_config_sizes():
    assert 0.8e6 < count_parameters(build_model("pointinfinity", "tiny")) < 1.6e6
    assert 8e6 < count_parameters(build_model("pointinfinity", "base")) < 12e6
    with pytest.raises(ValueError, match="unknown pointinfinity preset"):
        build_model("pointinfinity", "huge")


def test_guided_velocity_reuses_neighbours_as_asked(monkeypatch):
    import mogen.knn
    from mogen.solvers import guided_velocity, integrate

    net = _net()
    x = torch.randn(2, 256, 3) * 0.3
    t = torch.full((2,), 0.4)
    cond, mask = torch.zeros(2, 15), torch.ones(2, 5, dtype=torch.bool)
    searches = []
    real = mogen.knn.knn_indices
    monkeypatch.setattr(mogen.knn, "knn_indices", lambda x, k: searches.append(len(x)) or real(x, k))
    with torch.no_grad():
        exact = guided_velocity(net, cond, mask, guidance=1.0, knn_every=1)
        assert torch.allclose(exact(x, t), net(x, t, cond, mask), atol=1e-6)
        # guidance: one search for the cond + uncond batch, on the B clouds only
        searches.clear()
        guided_velocity(net, cond, mask, guidance=2.0)(x, t)
        assert searches == [2]
        # midpoint with knn_every=2: one search per step (10 steps = 20 calls)
        searches.clear()
        integrate(guided_velocity(net, cond, mask, knn_every=2), x, steps=10, solver="midpoint")
        assert len(searches) == 10
        searches.clear()
        integrate(guided_velocity(net, cond, mask, knn_every=1), x, steps=10, solver="midpoint")
        assert len(searches) == 20


def test_local_blocks_keep_permutation_equivariance_and_use_neighbours():
    net = _net(local_layers=1)
    x = torch.randn(2, 300, 3) * 0.5
    t, cond, mask = torch.tensor([0.3, 0.8]), torch.zeros(2, 15), torch.zeros(2, 5, dtype=torch.bool)
    perm = torch.randperm(300)
    with torch.no_grad():
        v = net(x, t, cond, mask)
        assert torch.allclose(v[:, perm], net(x[:, perm], t, cond, mask), atol=1e-5)
        # the block reads neighbours' tokens: other neighbour indices change the output
        idx = knn_indices(x, net.config.k)
        assert not torch.allclose(v, net(x, t, cond, mask, knn=idx.roll(1, dims=1)), atol=1e-4)


def test_ball_endpoint_model_samples_inside_the_crop():
    from mogen.sampling import sample_clouds

    for endpoint, inside in (("free", False), ("ball", True)):
        net = _net(endpoint=endpoint)
        torch.nn.init.normal_(net.out.bias, std=2.0)  # push every point far out
        x = sample_clouds(net, 2, points=128, steps=6)
        assert bool((x.norm(dim=-1) < 1).all()) == inside
