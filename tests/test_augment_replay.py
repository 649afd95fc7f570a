"""Agglomeration and error counting (splits / merges per mm, VOI, adapted Rand) on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from mogen.evaluate.replay import (VolumeTruth, agglomerate, best_threshold, cable_um, count_errors, errors_at,
                                   segmentation_scores)


def chain_volume():
    """Object 1: a rod along x (40 voxels of 0.1 µm = 4 µm) cut into 4 supervoxels 1-2-3-4;
    object 2: a short rod lying across supervoxel 2 (supervoxel 5), touching it."""
    labels = np.zeros((12, 12, 40), np.uint32)
    labels[4:7, 4:7, :] = 1
    labels[7:10, :, 14:17] = 2
    sv = np.zeros_like(labels)
    for k in range(4):
        sv[:, :, 10 * k : 10 * (k + 1)][labels[:, :, 10 * k : 10 * (k + 1)] == 1] = k + 1
    sv[labels == 2] = 5
    edges = np.array([[1, 2], [2, 3], [3, 4], [2, 5]])
    return labels, sv, edges


def test_count_errors_known_answer():
    labels, sv, edges = chain_volume()
    truth = VolumeTruth.build(sv, labels, edges, (0.1, 0.1, 0.1))
    assert truth.same.tolist() == [True, True, True, False]
    perfect = truth.errors(truth.same.astype(float), 0.5, voxels=True)
    assert (perfect["splits"], perfect["merges"]) == (0, 0)
    assert perfect["voi"] == pytest.approx(0.0, abs=1e-9) and perfect["arand"] == pytest.approx(0.0, abs=1e-9)
    none = truth.errors(np.zeros(4), 0.5)
    assert (none["splits"], none["merges"]) == (3, 0)  # three joins needed along the chain
    everything = truth.errors(np.ones(4), 0.5, voxels=True)
    assert (everything["splits"], everything["merges"]) == (0, 1)  # one cut needed
    assert everything["voi_split"] == pytest.approx(0.0, abs=1e-9) and everything["voi_merge"] > 0
    # one wrong join and one missed join
    mixed = truth.errors(np.array([0.9, 0.1, 0.9, 0.9]), 0.5)
    assert (mixed["splits"], mixed["merges"]) == (1, 1)


def test_splits_that_no_contact_could_mend_are_not_counted():
    labels, sv, edges = chain_volume()
    # drop the contact 2-3: object 1 falls into two parts no own contact links
    truth = VolumeTruth.build(sv, labels, edges[[0, 2, 3]], (0.1, 0.1, 0.1))
    assert truth.errors(np.array([1.0, 1.0, 0.0]), 0.5)["splits"] == 0
    # a join through another object does not mend a split: two merges, not fewer splits
    agg = agglomerate(6, np.array([[1, 5], [5, 2]]), np.ones(2), 0.5)
    obj = np.array([0, 1, 1, 0, 0, 2])
    own = np.array([0, 1, 1, 3, 4, 5])
    assert count_errors(agg, obj, own, np.array([[1, 5], [5, 2]]), np.ones(2, bool)) == (0, 2)


def test_voi_and_arand_known_values():
    truth = np.zeros((1, 4, 4), np.int64)
    truth[0, :2], truth[0, 2:] = 1, 2
    merged = np.where(truth > 0, 7, 0)
    s = segmentation_scores(truth, merged)
    # two equal objects in one segment: H(truth | seg) = 1 bit, nothing split
    assert s["voi_merge"] == pytest.approx(1.0) and s["voi_split"] == pytest.approx(0.0, abs=1e-12)
    split = truth * 10 + (np.arange(4)[None, None, :] >= 2)
    s = segmentation_scores(truth, np.where(truth > 0, split, 0))
    assert s["voi_split"] == pytest.approx(1.0) and s["voi_merge"] == pytest.approx(0.0, abs=1e-12)
    assert 0 < s["arand"] < 1


def test_cable_of_rods():
    labels = np.zeros((20, 20, 100), np.uint32)
    labels[8:12, 8:12, 5:95] = 1  # 9 µm along x (an even-width prism: the thinning's blind spot)
    z, y, x = np.mgrid[:20, :20, :100]
    labels[(np.abs(y - x * 0.15 - 2) < 2) & (z > 2) & (z < 6) & (x > 10) & (x < 90)] = 2  # oblique
    cable = cable_um(labels, (0.1, 0.1, 0.1))
    assert cable[1] == pytest.approx(9.0, rel=0.1)
    assert cable[2] == pytest.approx(8.0 * np.hypot(1, 0.15), rel=0.15)


def test_errors_per_mm_and_threshold_choice():
    labels, sv, edges = chain_volume()
    truth = VolumeTruth.build(sv, labels, edges, (0.1, 0.1, 0.1))
    scores = np.array([0.8, 0.7, 0.9, 0.3])  # separable: true contacts score higher
    t, err = best_threshold([truth], [scores])
    assert 0.3 < t <= 0.7 and err == 0.0
    out = errors_at([truth, truth], [np.zeros(4), np.ones(4)], 0.5)
    assert (out["splits"], out["merges"]) == (3, 1)
    assert out["errors_per_mm"] == pytest.approx(4 / (2 * truth.cable_mm))
    assert out["split_per_mm"] + out["merge_per_mm"] == pytest.approx(out["errors_per_mm"])


def test_cable_of_a_rendered_fragment_is_close_to_its_skeleton():
    from mogen.augment.random_walk import random_walk_skeleton, random_walk_surface
    from mogen.augment.render import Grid, points_to_solid
    from mogen.data.fragments import crop_fragments

    rng = np.random.default_rng(0)
    nodes, parents, radii = random_walk_skeleton(rng, n_nodes=300, radius_um=(0.15, 0.8))
    grid = Grid.around(nodes[150], 6.0, (100, 100, 100))
    child = np.flatnonzero(parents >= 0)
    t = np.linspace(0, 1, 51)[:, None, None]
    steps = nodes[child][None] + t * (nodes[parents[child]] - nodes[child])[None]  # [51, E, 3]
    inside = grid.index(steps.reshape(-1, 3))[1].reshape(51, -1)
    exact = float((inside[1:] * np.linalg.norm(nodes[parents[child]] - nodes[child], axis=1) / 50).sum())
    frags, _ = crop_fragments(random_walk_surface(nodes, parents, radii), nodes[150:151], 10.0, 2048, rng)
    solid = points_to_solid(frags[0] * 10.0 + nodes[150], grid).astype(np.uint32)
    assert cable_um(solid, grid.voxel_um)[1] == pytest.approx(exact, rel=0.2)
