"""The one renderer (surface points -> solid), dense packing, label volumes and their files."""

from __future__ import annotations

import numpy as np
import pytest

from mogen.augment.em import em_raw
from mogen.augment.io import read_volume, write_volume
from mogen.augment.random_walk import random_walk_fragments, random_walk_skeleton, random_walk_surface
from mogen.augment.render import Grid, boundaries, face_contacts, pack_labels, pack_objects, points_to_solid, skeleton_to_solid
from mogen.errors import UsageError, VolumeError


def cylinder_surface(radius, length, n, rng, caps=True):
    """Cylinder along x, uniform over its side (and both caps)."""
    side_area, cap_area = 2 * np.pi * radius * length, (2 * np.pi * radius**2 if caps else 0.0)
    n_side = int(n * side_area / (side_area + cap_area))
    x = rng.uniform(-length / 2, length / 2, n_side)
    th = rng.uniform(0, 2 * np.pi, n_side)
    side = np.c_[x, radius * np.cos(th), radius * np.sin(th)]
    m = n - n_side
    r = radius * np.sqrt(rng.random(m))
    t = rng.uniform(0, 2 * np.pi, m)
    caps = np.c_[np.where(rng.random(m) < 0.5, -length / 2, length / 2), r * np.cos(t), r * np.sin(t)]
    return np.r_[side, caps]


def test_dense_cylinder_surface_renders_to_its_volume():
    rng = np.random.default_rng(0)
    r, length, voxel = 1.0, 8.0, 0.05
    grid = Grid.around(np.zeros(3), (3.0, 3.0, 10.0), (voxel * 1000,) * 3)
    solid = points_to_solid(cylinder_surface(r, length, 200_000, rng), grid, dilate_um=0.2, erode_um=0.2)
    assert solid.sum() * voxel**3 == pytest.approx(np.pi * r**2 * length, rel=0.1)
    k, j, i = np.array(grid.shape) // 2
    assert solid[k, j, i] and not solid[k, j + int(1.3 * r / voxel), i]


def test_thick_tube_cut_open_by_its_crop_is_solid_not_hollow():
    """A crop cuts a thick dendrite open at both ends; 3D hole filling would leave it hollow."""
    rng = np.random.default_rng(1)
    tube = cylinder_surface(1.0, 6.0, 20_000, rng, caps=False)
    tube = tube @ np.linalg.qr(rng.normal(size=(3, 3)))[0].T  # oblique to every axis
    grid = Grid.around(np.zeros(3), 8.0, (100, 100, 100))
    solid = points_to_solid(tube, grid)
    assert solid[tuple(np.array(grid.shape) // 2)]  # the axis is inside
    volume = solid.sum() * 0.1**3
    assert np.pi * 1.0**2 * 6.0 * 0.85 < volume < np.pi * 1.3**2 * 6.0 * 1.2


def test_sparse_fragment_matches_its_exact_tubes():
    """A 2,048-point crop of a skeleton's surface renders close to the skeleton's exact tubes
    (the calibration behind DILATE_UM / ERODE_UM; real SWC crops give a median IoU of 0.75)."""
    from mogen.data.fragments import crop_fragments

    rng = np.random.default_rng(3)
    nodes, parents, radii = random_walk_skeleton(rng, n_nodes=300, radius_um=(0.3, 0.8))
    frags, _ = crop_fragments(random_walk_surface(nodes, parents, radii), nodes[150:151], 10.0, 2048, rng)
    pts = frags[0] * 10.0 + nodes[150]
    grid = Grid.around(nodes[150], 8.0, (100, 100, 100))
    exact = skeleton_to_solid(nodes, parents, radii, grid)
    solid = points_to_solid(pts, grid)
    iou = (solid & exact).sum() / (solid | exact).sum()
    assert iou > 0.6, iou


def test_skeleton_cylinder_volume_anisotropic():
    grid = Grid.around(np.zeros(3), (4.0, 4.0, 12.0), (80, 40, 40))
    nodes = np.array([[-4.0, 0, 0], [0.0, 0, 0], [4.0, 0, 0]])
    solid = skeleton_to_solid(nodes, np.array([-1, 0, 1]), np.full(3, 1.0), grid)
    expected = np.pi * 8.0 + 4 / 3 * np.pi  # cylinder + two hemispherical ends
    assert solid.sum() * 0.08 * 0.04 * 0.04 == pytest.approx(expected, rel=0.03)


def test_overlapping_solids_split_down_the_middle_and_touch():
    grid = Grid.around(np.zeros(3), 6.0, (100, 100, 100))
    a = skeleton_to_solid(np.array([[-3.0, 0, 0], [3.0, 0, 0]]), np.array([-1, 0]), np.array([0.8, 0.8]), grid)
    b = skeleton_to_solid(np.array([[0.0, -3, 0.9], [0.0, 3, 0.9]]), np.array([-1, 0]), np.array([0.8, 0.8]), grid)
    assert (a & b).any()
    labels = pack_labels([a, b], grid.voxel_um)
    assert set(np.unique(labels)) == {0, 1, 2}
    pairs, faces, _ = face_contacts(labels)
    assert pairs.tolist() == [[1, 2]] and faces[0] > 10
    # each keeps most of its voxels and never takes voxels outside its own solid
    assert (labels == 1).sum() > 0.8 * a.sum() and (labels == 2).sum() > 0.8 * b.sum()
    assert ((labels == 1) & ~a).sum() == 0 and ((labels == 2) & ~b).sum() == 0
    # the shared face lies between the two axes (z = 0 and z = 0.9): the overlap is split in its middle
    face_z = grid.centres()[0][:-1] + 0.05  # z of the face between section k and k + 1
    shared = (labels == 1)[1:] & (labels == 2)[:-1] | (labels == 2)[1:] & (labels == 1)[:-1]
    assert 0.2 < np.broadcast_to(face_z[:, None, None], shared.shape)[shared].mean() < 0.7


def test_face_contacts_known_answer():
    v = np.zeros((4, 4, 4), np.uint32)
    v[:, :2], v[:, 2:] = 1, 2
    v[0] = 3
    pairs, faces, centre = face_contacts(v)
    assert pairs.tolist() == [[1, 2], [1, 3], [2, 3]]
    assert faces.tolist() == [12, 8, 8]
    np.testing.assert_allclose(centre[0], [2.0, 1.5, 1.5])  # z 1..3, between y = 1 and 2, x 0..3
    assert face_contacts(np.ones((2, 2, 2), np.uint32))[0].shape == (0, 2)


def test_pack_objects_makes_touching_objects_without_passing_through_each_other():
    frags = random_walk_fragments(12, n_points=1024, radius_um=10.0, seed=3) * 10.0
    grid = Grid.around(np.zeros(3), 5.0, (125, 125, 125))
    placements, solids = pack_objects(list(frags), grid, np.random.default_rng(0), max_overlap=0.1)
    placed = [s for s in solids if s is not None]
    assert len(placed) >= 6
    labels = pack_labels(placed, grid.voxel_um)
    pairs, faces, _ = face_contacts(labels)
    assert len(pairs) >= 3  # different objects touch
    # the first object's points inside it are placed where no other object was: overlaps stay small
    occupied = np.sum(placed, axis=0)
    assert (occupied > 1).sum() < 0.15 * (occupied > 0).sum()
    # placements are rotations and keep the object's shape
    p = next(x for x in placements if x is not None)
    np.testing.assert_allclose(p.rotation @ p.rotation.T, np.eye(3), atol=1e-9)


def test_dense_packing_gives_many_false_contacts():
    """The benchmark's density requirement on a small packing: at least 30% of the candidate
    contacts (touching supervoxels) join two different objects."""
    from mogen.augment.examples import find_candidates
    from mogen.augment.segment import oversegment
    from mogen.augment.volume import Obj, VolumeSpec, render_volume

    spec = VolumeSpec(extent_um=5.0, voxel_nm=(125, 125, 125), objects=20)
    frags = random_walk_fragments(20, n_points=1024, radius_um=10.0, seed=5) * 10.0
    vol = render_volume([Obj(f, f"c{i}", "real", "") for i, f in enumerate(frags)], spec, seed=0)
    sv = oversegment(vol.labels, vol.grid.voxel_um, spec.block_um, spec.neck_um, seed=0)
    cand = find_candidates(sv, vol.labels, vol.grid)
    assert len(cand) > 50
    assert 0.3 <= cand.false_fraction < 1.0


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
    sv = labels * 10
    meta = {"objects": [{"label": 1, "cell": "a"}], "cells": ["a", "b"]}
    path = write_volume(tmp_path / f"v{suffix}", labels, voxel_nm=(40, 8, 8), offset_nm=(400, 80, 16), raw=raw,
                        supervoxels=sv, metadata=meta)
    vol = read_volume(path)
    np.testing.assert_array_equal(vol["labels"], labels)
    np.testing.assert_array_equal(vol["raw"], raw)
    np.testing.assert_array_equal(vol["supervoxels"], sv)
    assert list(vol["attrs"]["resolution"]) == [40.0, 8.0, 8.0]
    assert list(vol["attrs"]["offset"]) == [400.0, 80.0, 16.0]
    assert list(vol["attrs"]["axis_names"]) == ["z", "y", "x"]
    assert vol["metadata"] == meta
    with pytest.raises(FileExistsError):
        write_volume(path, labels, voxel_nm=(40, 8, 8))


def test_volume_files_refused_clearly(tmp_path):
    with pytest.raises(UsageError, match="unsupported volume format"):
        write_volume(tmp_path / "v.tif", np.zeros((2, 2, 2)), voxel_nm=(8, 8, 8))
    with pytest.raises(VolumeError, match="no such volume"):
        read_volume(tmp_path / "missing.zarr")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(VolumeError, match="unreadable"):
        read_volume(tmp_path / "junk.h5")


def test_augment_commands_end_to_end_and_bad_input_before_work(tmp_path, capsys):
    from mogen.augment import cli
    from mogen.cli import run_command
    from mogen.samples import write_samples

    pts = random_walk_fragments(6, n_points=512, radius_um=10.0, seed=0) * 10.0
    write_samples(tmp_path / "s.npz", pts, 10.0, {"checkpoint": "test"})
    run = lambda *a: run_command("mogen augment", cli, list(a))
    small = ["--extent", "3", "--voxel-size", "150", "150", "150", "--objects", "6"]
    assert run("render", "--source", str(tmp_path / "s.npz"), "--out", str(tmp_path / "v.zarr"), *small) == 0
    vol = read_volume(tmp_path / "v.zarr")
    assert vol["raw"] is not None and vol["supervoxels"] is not None and vol["metadata"]["cells"] == ["synthetic"]
    assert run("examples", "--volume", str(tmp_path / "v.zarr"), "--out", str(tmp_path / "e.npz"), "--points", "16") == 0
    with np.load(tmp_path / "e.npz") as z:
        assert z["points"].shape[1:] == (16, 3) and len(z["labels"]) == len(z["cell_a"])
    capsys.readouterr()
    # every bad input: one line, exit 2 (argument) or 1 (data), nothing written
    bad = pts.copy()
    bad[2, 5, 1] = np.nan
    np.savez(tmp_path / "nan.npz", points=bad, radius_um=10.0)

    def render(**change):
        opts = {"--source": str(tmp_path / "s.npz"), "--out": str(tmp_path / "w.zarr"), "--extent": "3",
                "--voxel-size": ["150", "150", "150"], "--objects": "6", **change}
        return run("render", *[x for k, v in opts.items() for x in ([k] + (v if isinstance(v, list) else [v]))])

    cases = [({"--voxel-size": ["0", "150", "150"]}, 2, "--voxel-size"), ({"--extent": "1e5"}, 2, "fit in memory"),
             ({"--source": str(tmp_path / "nan.npz")}, 1, "NaN"), ({"--out": str(tmp_path / "w.tif")}, 2, "unsupported volume format"),
             ({"--noise": "-1"}, 2, "--noise")]
    for change, code, message in cases:
        assert render(**change) == code, change
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "w.zarr").exists() and not (tmp_path / "w.tif").exists()
    assert run("render", "--source", str(tmp_path / "s.npz"), "--out", str(tmp_path / "v.zarr"), *small) == 2  # exists
    assert run("examples", "--volume", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "e2.npz")) == 2
