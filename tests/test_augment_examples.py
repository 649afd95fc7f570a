"""Merge candidates: contact geometry drawn the same way for true joins and false merges."""

from __future__ import annotations


import numpy as np
import pytest
from scipy.stats import ks_2samp

from mogen.augment.examples import CONTACT_RANGE, build_candidates, elastic_deform, split_example
from mogen.augment.random_walk import random_walk_fragments


@pytest.fixture(scope="module")
def frags():
    f = random_walk_fragments(48, n_points=1024, radius_um=10.0, seed=0, per_neuron=8)
    return f, np.array([f"n{i // 8}" for i in range(len(f))])


def test_true_join_and_false_merge_contacts_are_indistinguishable(frags):
    f, ids = frags
    c = build_candidates(f, ids, 400, n_points=256, seed=1)
    t, m = c.labels == 1, c.labels == 0
    assert 150 < t.sum() < 250
    # realised contact distance: same distribution, inside the drawn range
    assert ks_2samp(c.contact_distance[t], c.contact_distance[m]).pvalue > 0.01
    assert c.contact_distance.min() >= CONTACT_RANGE[0] - 2e-3 and c.contact_distance.max() <= CONTACT_RANGE[1] + 2e-3
    # both classes split alike between the two pieces (where the centroid ends up, or how far
    # the far piece had to move, follows from morphology and may differ: that is the signal)
    assert ks_2samp(c.piece_fraction[t], c.piece_fraction[m]).pvalue > 0.01
    # classes are what they say: same neuron vs two neurons
    assert (c.neuron_a[t] == c.neuron_b[t]).all() and (c.neuron_a[m] != c.neuron_b[m]).all()
    assert np.abs(c.points).max() <= 1.0 + 1e-5


def test_partners_and_single_class(frags):
    f, ids = frags
    c = build_candidates(f[:8], ids[:8], 20, n_points=128, seed=2, partners=(f[8:16], ids[8:16]), only="false")
    assert (c.labels == 0).all() and set(c.neuron_b) == {"n1"}
    with pytest.raises(ValueError, match="two neurons"):
        build_candidates(f[:8], ids[:8], 5, seed=0)


def test_split_example_and_elastic_control(frags):
    f, _ = frags
    rng = np.random.default_rng(0)
    half = split_example(f[0].astype(float), rng)
    assert 0.2 * len(f[0]) <= len(half) <= 0.8 * len(f[0])
    d = elastic_deform(f[:4], seed=0)
    assert d.shape == f[:4].shape and not np.allclose(d, f[:4])
    assert np.abs(d - f[:4]).mean() < 0.2  # a deformation, not a different object
