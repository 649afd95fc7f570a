"""Fragments pinned by value: a faster `mogen prepare` must cut the same fragments.

The points were recorded with the code of commit b9396a4 (before the data pipeline was made
faster); the cable ends and calibers when they replaced the MST leaf count in the conditions.
A change that alters them changes every dataset prepared from now on: if it is meant (e.g. a
statistically equivalent sampling), update the pins in the same commit and say why.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from mogen.data.fragments import make_fragments
from mogen.data.neuron import load_file

QUIRKY = Path(__file__).parent / "data" / "swc" / "quirky.swc"


def _quirky():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its missing radii are warned about; other tests check that
        return load_file(QUIRKY)


def _check(fr, ends, types, sums, n_anchors):
    assert fr.cable_ends.tolist() == ends
    assert fr.neurite_type.tolist() == types
    assert fr.n_anchors == n_anchors and fr.n_skipped == 0
    # per-fragment coordinate sums: one changed point moves them by far more than float32 rounding
    np.testing.assert_allclose(fr.points.astype(np.float64).sum((1, 2)), sums, rtol=0, atol=2e-4)


def test_skeleton_fragments_pinned():
    neuron = _quirky()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fr = make_fragments(neuron, radius=5, points=256, spacing=5, seed=7)
    _check(fr, [2] * 16,
           [1, 3, 1, 3, 1, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0],
           [47.029711, -24.315902, 38.738316, -27.660101, 63.512621, 22.951787, -15.478205, 1.120835,
            -3.386414, 6.820099, 106.502897, -1.436804, -0.529326, 14.372102, -5.190543, 1.478812], 16)
    np.testing.assert_allclose(fr.points[[0, -1], [0, 100]], [[-0.22327453, -0.14863756, 0.29963660],
                                                               [0.24998997, 0.16584636, 0.82058913]], atol=1e-7)
    # tube radius at the anchor / R: soma contour (radius 0 -> the neuron's median), the tapering
    # dendrite (1.0 -> 0.6 µm), the axon stub, the type-7 cylinder (1.5 µm)
    np.testing.assert_allclose(fr.caliber, [0.18, 0.1964, 0.1818, 0.1564, 0.1711, 0.0818, 0.1018, 0.1218, 0.1418,
                                            0.1618] + [0.3] * 6, atol=1e-4)


def test_skeleton_fragments_of_2048_points_pinned():
    neuron = _quirky()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fr = make_fragments(neuron, radius=5, points=2048, spacing=5, max_fragments=4, seed=1)
    _check(fr, [2, 2, 2, 2], [3, 2, 0, 0], [-520.100042, -74.062941, 559.768308, -38.681828], 16)
    np.testing.assert_allclose(fr.anchor_um, [[0, 0, 12.143689], [0, -22.14369, 0], [50, 50, 52.143688],
                                              [50, 50, 72.143692]], atol=1e-5)


@pytest.fixture(scope="module")
def navis_neuron():
    from mogen.data.neuron import navis_example

    return navis_example(1)


def test_mesh_fragments_pinned(navis_neuron):
    fr = make_fragments(navis_neuron, radius=10, points=512, max_fragments=5, seed=7)
    _check(fr, [2, 253, 316, 182, 336], [0, 3, 3, 3, 3], [-6.299801, 201.442105, -11.270738, 83.206908, 141.682986], 482)
    np.testing.assert_allclose(fr.points[[0, -1], [0, 100]], [[0.27248636, -0.60578418, -0.12356244],
                                                               [0.43883720, 0.44451547, 0.33517078]], atol=1e-7)
    np.testing.assert_allclose(fr.anchor_um[0], [152.29290771, 252.60308838, 225.16284180], atol=1e-4)
