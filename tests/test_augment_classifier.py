"""The PyG plausibility classifier: sees clouds in their moment frame (rotations change nothing),
batches clouds of any sizes without mixing them, and learns a separable toy task."""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Batch

from helpers import tube_clouds
from mogen.evaluate.classifier import PlausibilityNet, canonical_frame, score, train_classifier
from mogen.evaluate.pointnet import cloud_graphs
from mogen.geometry import random_rotations
from mogen.knn import knn_graph, knn_indices_bruteforce


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


def test_canonical_frame_of_a_batch_is_each_clouds_own():
    a, b = anisotropic_clouds(1, 50, seed=3)[0], anisotropic_clouds(1, 90, seed=4)[0]
    batched = canonical_frame(torch.cat([a, b]), torch.tensor([0] * 50 + [1] * 90))
    assert torch.allclose(batched[:50], canonical_frame(a[None])[0], atol=1e-5)
    assert torch.allclose(batched[50:], canonical_frame(b[None])[0], atol=1e-5)


def test_knn_graph_is_the_brute_force_graph_per_cloud():
    a, b = torch.rand(40, 3), torch.rand(25, 3)
    edges = knn_graph(torch.cat([a, b]), k=5, batch=torch.tensor([0] * 40 + [1] * 25))
    assert edges.shape == (2, 65 * 5)
    assert torch.equal(edges[1], torch.arange(65).repeat_interleave(5))  # k edges per point, in point order
    neighbours = edges[0].view(65, 5)
    assert torch.equal(neighbours[:40], knn_indices_bruteforce(a, 5))
    assert torch.equal(neighbours[40:], knn_indices_bruteforce(b, 5) + 40)  # never across clouds


def test_classifier_scores_are_rotation_invariant():
    torch.manual_seed(0)
    model = PlausibilityNet().eval()
    x = anisotropic_clouds()
    rot = random_rotations(len(x), torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(model(x), model(x @ rot), atol=1e-4)


def test_batched_clouds_of_any_size_score_as_they_do_alone():
    torch.manual_seed(0)
    model = PlausibilityNet().eval()
    clouds = [anisotropic_clouds(1, p, seed=p)[0] for p in (40, 128, 75)]
    alone = torch.cat([model(Batch.from_data_list(cloud_graphs([c], model.k))) for c in clouds])
    with torch.no_grad():
        together = model(Batch.from_data_list(cloud_graphs(clouds, model.k)))
    assert torch.allclose(alone, together, atol=1e-5)
    assert np.allclose(score(model, clouds), torch.sigmoid(together).numpy(), atol=1e-6)


def test_classifier_learns_single_tubes_from_crossing_tubes():
    # one tube through the contact (a true join) vs two tubes crossing there (a false merge)
    rng = np.random.default_rng(0)
    one = tube_clouds(64, 128, rng)
    two = np.concatenate([tube_clouds(64, 64, rng), tube_clouds(64, 64, rng)], axis=1)
    pts, labels = np.concatenate([one, two]), np.r_[np.ones(64), np.zeros(64)]
    test_one = tube_clouds(32, 128, rng)
    test_two = np.concatenate([tube_clouds(32, 64, rng), tube_clouds(32, 64, rng)], axis=1)
    model = train_classifier((pts, labels), steps=60, batch_size=16, seed=0)
    s_one, s_two = score(model, test_one), score(model, test_two)
    assert (s_one[:, None] > s_two[None, :]).mean() > 0.95  # held-out AUROC


def test_pooling_shares_the_gradient_among_tied_maxima():
    # repeated points tie for the max; torch's segment-reduce backward gives each tie the whole
    # (negative) gradient, which broke training on skeleton candidates
    from mogen.evaluate.pointnet import global_max_mean_pool

    base = torch.rand(3, 4) + 0.5
    for sizes in ([6, 6], [6, 9]):
        clouds = [torch.cat([base, base, torch.rand(n - 6, 4)]) for n in sizes]  # every feature's max appears twice
        h = torch.cat(clouds).requires_grad_()
        batch = torch.arange(len(sizes)).repeat_interleave(torch.tensor(sizes))
        ptr = torch.tensor([0, *np.cumsum(sizes)])
        upstream = -torch.rand(len(sizes), 8) - 0.1
        (global_max_mean_pool(h, batch, ptr) * upstream).sum().backward()
        ref = [c.clone().requires_grad_() for c in clouds]
        sum((torch.cat([c.amax(0), c.mean(0)]) * upstream[i]).sum() for i, c in enumerate(ref)).backward()
        assert torch.allclose(h.grad, torch.cat([c.grad for c in ref]), atol=1e-6), sizes
