"""Rendering neurons into label volumes, EM-like raw, and zarr/HDF5 output."""

from __future__ import annotations

import numpy as np
import pytest

from mogen.augment.em import boundaries, em_raw
from mogen.augment.io import read_volume, write_volume
from mogen.augment.render import Grid, pack_fragments, pack_labels, points_to_solid, skeleton_to_solid, touching_pairs


def cylinder_surface(radius, length, n, rng):
    """Closed cylinder along x (side + both caps), uniform over its area."""
    side_area, cap_area = 2 * np.pi * radius * length, 2 * np.pi * radius**2
    n_side = int(n * side_area / (side_area + cap_area))
    x = rng.uniform(-length / 2, length / 2, n_side)
    th = rng.uniform(0, 2 * np.pi, n_side)
    side = np.c_[x, radius * np.cos(th), radius * np.sin(th)]
    m = n - n_side
    r = radius * np.sqrt(rng.random(m))
    t = rng.uniform(0, 2 * np.pi, m)
    caps = np.c_[np.where(rng.random(m) < 0.5, -length / 2, length / 2), r * np.cos(t), r * np.sin(t)]
    return np.r_[side, caps]


def test_cylinder_surface_renders_to_expected_volume():
    rng = np.random.default_rng(0)
    r, length, voxel = 1.0, 8.0, 0.05
    grid = Grid.around(np.zeros(3), (3.0, 3.0, 10.0), (voxel * 1000,) * 3)
    solid = points_to_solid(cylinder_surface(r, length, 200_000, rng), grid)
    volume = solid.sum() * voxel**3
    expected = np.pi * r**2 * length
    # voxels that hold surface points count whole: about half a voxel of extra radius
    assert volume == pytest.approx(expected, rel=0.08)
    # it is solid: the axis is inside, a point outside the radius is not
    k, j, i = (np.array(grid.shape) // 2)
    assert solid[k, j, i] and not solid[k, j + int(1.3 * r / voxel), i]


def test_open_thin_tube_is_filled_by_closing():
    """Crops cut neurites open at the ball's edge; closing must still make them solid."""
    rng = np.random.default_rng(1)
    x, th = rng.uniform(-3, 3, 30000), rng.uniform(0, 2 * np.pi, 30000)
    tube = np.c_[x, 0.3 * np.cos(th), 0.3 * np.sin(th)]  # no caps
    grid = Grid.around(np.zeros(3), (2.0, 2.0, 6.0), (50, 50, 50))
    solid = points_to_solid(tube, grid, closing_um=0.4)
    k, j, i = (np.array(grid.shape) // 2)
    assert solid[k, j, i]
    assert solid.sum() * 0.05**3 == pytest.approx(np.pi * 0.09 * 6, rel=0.25)


def test_skeleton_cylinder_volume_anisotropic():
    grid = Grid.around(np.zeros(3), (4.0, 4.0, 12.0), (80, 40, 40))
    nodes = np.array([[-4.0, 0, 0], [0.0, 0, 0], [4.0, 0, 0]])
    solid = skeleton_to_solid(nodes, np.array([-1, 0, 1]), np.full(3, 1.0), grid)
    expected = np.pi * 8.0 + 4 / 3 * np.pi  # cylinder + two hemispherical ends
    assert solid.sum() * 0.08 * 0.04 * 0.04 == pytest.approx(expected, rel=0.03)


def test_two_touching_neurons_keep_distinct_labels():
    grid = Grid.around(np.zeros(3), 6.0, (100, 100, 100))
    a = skeleton_to_solid(np.array([[-3.0, 0, 0], [3.0, 0, 0]]), np.array([-1, 0]), np.array([0.8, 0.8]), grid)
    b = skeleton_to_solid(np.array([[0.0, -3, 0.9], [0.0, 3, 0.9]]), np.array([-1, 0]), np.array([0.8, 0.8]), grid)
    assert (a & b).any()  # they overlap before packing
    labels = pack_labels([a, b], grid.voxel_um)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert touching_pairs(labels) == {(1, 2)}
    # the overlap is split, not given wholly to one: each keeps most of its own voxels
    assert (labels == 1).sum() > 0.8 * a.sum() * 0.9 and (labels == 2).sum() > 0.8 * b.sum() * 0.9
    assert ((labels == 1) & ~a).sum() == 0 and ((labels == 2) & ~b).sum() == 0


def test_pack_fragments_makes_touching_objects():
    from mogen.augment.random_walk import random_walk_fragments

    frags = random_walk_fragments(3, n_points=4000, radius_um=10.0, seed=3) * 10.0
    labels, grid, offsets = pack_fragments(list(frags), voxel_nm=(200, 200, 200), extent_um=8.0, spread_um=0.5, seed=0)
    assert labels.shape == grid.shape and labels.max() <= 3
    assert len(np.unique(labels)) >= 3


def test_em_raw_membranes_and_missing_sections():
    labels = np.zeros((10, 40, 40), np.uint32)
    labels[:, 5:20, 5:35], labels[:, 20:35, 5:35] = 1, 2
    raw = em_raw(labels, voxel_nm=(40, 8, 8), missing_sections=0.3, seed=0, noise=0.0)
    kept = raw.reshape(10, -1).max(1) > 0
    assert 0 < kept.sum() < 10  # some sections missing, not all
    z = np.flatnonzero(kept)[0]
    mem = boundaries(labels)[z]
    assert raw[z][mem].mean() < raw[z][labels[z] > 0][~mem[labels[z] > 0]].mean() - 40


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_volume_roundtrip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 255, (6, 10, 12), dtype=np.uint8)
    labels = rng.integers(0, 4, (6, 10, 12)).astype(np.uint64)
    path = write_volume(tmp_path / f"v{suffix}", raw, labels, voxel_nm=(40, 8, 8), offset_nm=(400, 80, 16),
                        metadata={"objects": ["a", "b"]})
    vol = read_volume(path)
    assert vol["raw"].shape == (6, 10, 12) and vol["raw"].dtype == np.uint8
    np.testing.assert_array_equal(vol["labels"], labels)
    np.testing.assert_array_equal(vol["raw"], raw)
    assert list(vol["attrs"]["resolution"]) == [40.0, 8.0, 8.0]
    assert list(vol["attrs"]["offset"]) == [400.0, 80.0, 16.0]
    assert list(vol["attrs"]["axis_names"]) == ["z", "y", "x"]
    with pytest.raises(FileExistsError):
        write_volume(path, raw, labels, voxel_nm=(40, 8, 8))
