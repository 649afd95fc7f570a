"""Over-segmentation, merge candidates and their views, on hand-made volumes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mogen.augment.examples import ViewCutter, elastic_deform, find_candidates, jitter, supervoxel_objects
from mogen.augment.render import Grid
from mogen.augment.segment import oversegment


def rods():
    """Object 1: a rod along x (y, z in 8..12); object 2: a rod along y lying on it (z 12..16).

    Supervoxels: object 1 cut at x = 20 into 1 (x < 20) and 2 (x >= 20); object 2 is supervoxel 3.
    """
    grid = Grid.around(np.zeros(3), (2.0, 2.0, 4.0), (100, 100, 100))  # shape (20, 20, 40)
    labels = np.zeros(grid.shape, np.uint32)
    labels[8:12, 8:12, :] = 1
    labels[12:16, :, 26:30] = 2
    sv = np.zeros_like(labels)
    sv[labels == 1] = 1
    sv[:, :, 20:][labels[:, :, 20:] == 1] = 2
    sv[labels == 2] = 3
    return grid, labels, sv


def test_candidates_from_hand_made_volume():
    grid, labels, sv = rods()
    cand = find_candidates(sv, labels, grid)
    assert cand.edges.tolist() == [[1, 2], [2, 3]]  # 1 never touches the crossing rod
    assert cand.same.tolist() == [True, False]
    assert cand.faces.tolist() == [16, 16]  # a 4x4 cross-section; a 4x4 patch where 3 lies on 2
    assert cand.false_fraction == 0.5
    # contacts: the cut plane at x = 0 (voxel 20 starts at 0.0 µm), and the top face of rod 1 under rod 2
    np.testing.assert_allclose(cand.contact_um[0], [0.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(cand.contact_um[1], [0.8, 0.0, 0.2], atol=1e-9)
    assert cand.objects.tolist() == [[1, 1], [1, 2]]


def test_supervoxels_must_be_pure():
    _, labels, sv = rods()
    sv[labels == 2] = 2  # supervoxel 2 now covers both objects
    with pytest.raises(ValueError, match="more than one"):
        supervoxel_objects(sv, labels)


def test_view_is_the_surface_of_both_pieces_around_the_contact():
    grid, labels, sv = rods()
    cut = ViewCutter(sv, grid)
    surface = cut.surface(1, 2)
    # the cut face between 1 and 2 is inside the union, so no surface voxel lies in its two
    # layers' interior; the rod's ends at the volume edge are not surface either
    inner = surface[(surface[:, 0] > 8) & (surface[:, 0] < 11) & (surface[:, 1] > 8) & (surface[:, 1] < 11)]
    assert len(inner) == 0
    # where rod 2 lies on supervoxel 2, that face is surface of the pair (1, 2) but not of (2, 3)
    assert ((surface[:, 0] == 11) & (surface[:, 2] >= 26) & (surface[:, 2] < 30)).any()
    s23 = cut.surface(2, 3)
    assert not ((s23[:, 0] == 11) & (s23[:, 2] >= 27) & (s23[:, 2] < 29) & (s23[:, 1] >= 9) & (s23[:, 1] <= 10)).any()
    cand = find_candidates(sv, labels, grid)
    views = cut.views(cand.edges, cand.contact_um, view_um=1.0, n_points=256, seed=0)
    assert views.shape == (2, 256, 3) and np.abs(views).max() <= 1.0 + 1e-6
    # the true contact's view is a rod along x of half-width 0.2 µm: |y|, |z| <= 0.2 / 1.0
    v = views[0]
    assert np.abs(v[:, 1:]).max() <= 0.2 + 1e-6 and np.ptp(v[:, 0]) > 1.5
    # the false contact's view holds points of both rods (some far along y, beyond rod 1's width)
    assert (np.abs(views[1][:, 1]) > 0.3).any()


def test_oversegment_cuts_blocks_and_necks_and_never_crosses_objects():
    voxel = (0.1, 0.1, 0.1)
    # a dumbbell: two balls of radius 1 µm joined by a 0.2 µm thin neck, and a second object touching it
    z, y, x = np.mgrid[:30, :30, :80] * 0.1
    ball = lambda cx: (x - cx) ** 2 + (y - 1.5) ** 2 + (z - 1.5) ** 2 <= 1.0
    neck = (np.abs(y - 1.5) <= 0.15) & (np.abs(z - 1.5) <= 0.15) & (x > 1.5) & (x < 6.5)
    labels = np.zeros((30, 30, 80), np.uint32)
    labels[ball(1.5) | ball(6.5) | neck] = 1
    labels[(x > 3) & (x < 5) & (z > 2.2) & (z < 2.8) & (labels == 0)] = 2
    necks = oversegment(labels, voxel, block_um=0, neck_um=0.2, seed=0)
    obj = supervoxel_objects(necks, labels)  # pure
    n1 = np.unique(necks[labels == 1])
    assert len(n1) == 2  # split at the neck, into the two balls
    assert len(np.unique(necks[labels == 2])) == 1 and set(obj[n1]) == {1}
    # no neck splits: one piece per object; blocks: cut at block faces
    assert len(np.unique(oversegment(labels, voxel, block_um=0, neck_um=0, seed=0)[labels == 1])) == 1
    blocks = oversegment(labels, voxel, block_um=2.0, neck_um=0, seed=0)
    assert len(np.unique(blocks[labels == 1])) >= 4  # 7 µm long in 2 µm blocks
    for box in ndimage.find_objects(blocks):
        assert all(sl.stop - sl.start <= 20 for sl in box)  # no piece spans more than one block
    assert ((blocks > 0) == (labels > 0)).all()


def test_control_deformations():
    f = np.random.default_rng(0).normal(scale=0.3, size=(4, 200, 3)).astype(np.float32)
    d = elastic_deform(f, seed=0)
    assert d.shape == f.shape and not np.allclose(d, f)
    assert 0.01 < np.abs(d - f).mean() < 0.2  # a deformation, not a different object
    j = jitter(f, 0.05, seed=0)
    assert np.std(j - f) == pytest.approx(0.05, rel=0.1)
