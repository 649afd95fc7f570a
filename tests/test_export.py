"""Skeletons with radii, the SWC writer, watertight meshes, NEURON loading and `mogen export`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import tube_clouds
from mogen.cli import main
from mogen.data.swc import read_swc, write_swc
from mogen.errors import SWCError
from mogen.meshing import watertight_mesh
from mogen.samples import write_samples
from mogen.simulator import neuron_available, neuron_load, sanity_issues
from mogen.skeleton import Skeleton, skeletonize


def tube(p0, p1, radius, n, rng):
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    u = np.cross(d, [0.3, 0.5, 0.8])
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    t, a = rng.uniform(0, 1, n), rng.uniform(0, 2 * np.pi, n)
    return p0 + t[:, None] * (p1 - p0) + radius * (np.cos(a)[:, None] * u + np.sin(a)[:, None] * v)


@pytest.fixture(scope="module")
def y_cloud():
    rng = np.random.default_rng(0)
    return np.concatenate([tube([0, 0, 0], [-10, 0, 0], 0.5, 1500, rng), tube([0, 0, 0], [7, 6, 0], 0.3, 900, rng),
                           tube([0, 0, 0], [7, -6, 1], 0.3, 900, rng)])


def test_skeleton_of_a_y_is_one_rooted_tree_with_radii(y_cloud):
    sk = skeletonize(y_cloud, 0.5, root=np.array([-10.0, 0, 0]))
    assert sk.n_roots == 1 and (sk.parents[1:] < np.arange(1, len(sk))).all()  # parents first
    assert sk.n_branch_points == 1 and sk.n_leaves == 3
    assert np.linalg.norm(sk.nodes[0] - [-10, 0, 0]) < 2.5  # the root is the end asked for
    thick = sk.nodes[:, 0] < -3
    assert np.median(sk.radii[thick]) == pytest.approx(0.5, abs=0.1)
    assert np.median(sk.radii[sk.nodes[:, 0] > 3]) == pytest.approx(0.3, abs=0.1)
    assert 22 < sk.cable_um < 29  # 10 + 2 x 9.2 µm, ends retract


def test_separate_pieces_are_joined_into_one_tree():
    rng = np.random.default_rng(1)
    pieces = np.concatenate([tube([0, 0, 0], [8, 0, 0], 0.3, 800, rng), tube([12, 0, 0], [20, 0, 0], 0.3, 800, rng)])
    sk = skeletonize(pieces, 0.5)
    assert sk.n_roots == 1 and sk.n_branch_points == 0
    assert sk.cable_um > 12  # the 4 µm gap is bridged, not dropped


def test_swc_writer_round_trips_and_refuses_non_trees(tmp_path, y_cloud):
    sk = skeletonize(y_cloud, 0.5)
    path = write_swc(tmp_path / "y.swc", sk.nodes, sk.parents, sk.radii, types=3)
    back = read_swc(path)
    assert len(back.nodes) == len(sk) and back.n_trees == 1
    np.testing.assert_allclose(back.nodes.radius.to_numpy(), sk.radii, atol=1e-4)
    assert back.cable_length == pytest.approx(sk.cable_um, rel=1e-3)
    assert sanity_issues(path) == []
    nodes, r = np.zeros((3, 3)) + np.arange(3)[:, None], np.ones(3)
    with pytest.raises(SWCError, match="cycle"):
        write_swc(tmp_path / "c.swc", nodes, np.array([1, 2, 0]), r)
    with pytest.raises(SWCError, match="2 roots"):
        write_swc(tmp_path / "f.swc", nodes, np.array([-1, 0, -1]), r)
    with pytest.raises(SWCError, match="radius"):
        write_swc(tmp_path / "r.swc", nodes, np.array([-1, 0, 1]), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(SWCError, match="outside"):
        write_swc(tmp_path / "o.swc", nodes, np.array([-1, 0, 7]), r)
    assert read_swc(write_swc(tmp_path / "ok.swc", nodes, np.array([-1, 0, -1]), r, max_roots=None)).n_trees == 2


def test_sanity_flags_zero_length_edges_and_forests():
    sk = Skeleton(np.array([[0.0, 0, 0], [0, 0, 0], [1, 0, 0]]), np.array([-1, 0, -1]), np.ones(3))
    issues = " ".join(sanity_issues(sk))
    assert "2 roots" in issues and "zero-length" in issues


@pytest.mark.skipif(not neuron_available(), reason="the neuron package is not installed (pip install mogen[sim])")
def test_neuron_loads_a_skeleton_of_a_cloud(tmp_path, y_cloud):
    sk = skeletonize(y_cloud, 0.5)
    path = write_swc(tmp_path / "y.swc", sk.nodes, sk.parents, sk.radii)
    first = neuron_load(path)
    assert first["sections"] == 3  # the trunk and two branches: unbranched stretches stay one section each
    assert first["length_um"] == pytest.approx(sk.cable_um, rel=1e-3)
    assert neuron_load(path)["sections"] == 3  # loading again does not count the first cell


def test_mesh_of_a_y_is_watertight_and_one_piece(y_cloud):
    mesh = watertight_mesh(y_cloud, voxel_um=0.12)
    assert mesh.is_watertight and len(mesh.split()) == 1
    volume = np.pi * (0.5**2 * 10 + 0.3**2 * (np.hypot(7, 6) + np.sqrt(86)))
    assert 0.6 * volume < mesh.volume < 1.4 * volume


def test_export_command(tmp_path):
    clouds = tube_clouds(2, 1024, np.random.default_rng(0), radius=(0.04, 0.05), bend=0.3)
    samples = write_samples(tmp_path / "samples.npz", clouds * 10.0, radius_um=10.0, provenance={},
                            neurite_type=np.array([2, 3]))
    out = tmp_path / "out"
    assert main(["export", "--samples", str(samples), "--out", str(out), "--no-preview"]) == 0
    report = json.loads((out / "export.json").read_text())
    assert report["summary"]["one_root"] == 2 and report["summary"]["watertight"] == 2
    assert read_swc(out / "cloud_0000.swc").nodes.label.unique().tolist() == [2]  # the axon's SWC type
    assert (out / "cloud_0001.ply").is_file()
    assert main(["export", "--samples", str(samples), "--out", str(out)]) == 2  # no silent overwrite
    assert main(["export", "--samples", str(tmp_path / "missing.npz"), "--out", str(out), "--force"]) == 1
