"""Units, surface sampling, fragments and the by-neuron split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from mogen.data import DataError
from mogen.data.fragments import Cropper, anchors_along_cable, make_fragments
from mogen.data.neuron import Neuron, load_file
from mogen.data.split import SPLITS, split_counts, split_neurons
from mogen.data.surface import MeshSurface, TubeSurface, skeleton_surface
from mogen.data.units import guess_mesh_units, to_um

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def navis_neuron() -> Neuron:
    import navis

    from mogen.data.neuron import from_navis

    sk = navis.example_neurons(1, kind="skeleton")
    mesh = navis.example_neurons(1, kind="mesh")
    return from_navis(mesh, sk)


def test_units():
    assert to_um("8 nanometer") == pytest.approx(0.008)
    assert to_um("nm") == pytest.approx(1e-3)
    assert to_um("µm") == to_um("um") == to_um("micron") == 1.0
    assert to_um("mm") == pytest.approx(1000)
    with pytest.raises(ValueError, match="cannot understand"):
        to_um("parsecs per fortnight squared")
    v = trimesh.creation.icosphere(radius=3.0)
    assert guess_mesh_units(v.vertices, v.faces)[0] == "um"
    assert guess_mesh_units(v.vertices * 1000, v.faces)[0] == "nm"


def _distance_to_axis(p, a, b):
    d = (b - a) / np.linalg.norm(b - a)
    v = p - a
    return np.linalg.norm(v - (v @ d)[:, None] * d, axis=1), v @ d / np.linalg.norm(b - a)


def test_tube_points_lie_at_radius_from_axis():
    rng = np.random.default_rng(0)
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, -2.0, 9.0])
    r0, r1 = 0.5, 2.0
    s = TubeSurface(a[None], b[None], np.array([r0]), np.array([r1]))
    p = s.sample(5000, rng)
    dist, u = _distance_to_axis(p, a, b)
    assert (u >= 0).all() and (u <= 1).all()
    np.testing.assert_allclose(dist, r0 + (r1 - r0) * u, atol=1e-9)
    # density ∝ r(u): the wide half's share of the area is its mean radius over the whole's
    r_mid = (r0 + r1) / 2
    expected = 0.5 * (r_mid + r1) / 2 / r_mid
    assert (u > 0.5).mean() == pytest.approx(expected, abs=0.03)


def test_skeleton_surface_radii_and_missing_radius_warning():
    n = load_file(DATA / "swc" / "quirky.swc")
    with pytest.warns(UserWarning, match=r"1 of 7 non-soma nodes have a missing or zero radius"):
        s = skeleton_surface(n.skeleton)
    assert len(s.sphere_r) == 1  # the 3-node soma contour -> one sphere
    # edge 13 -> 14: radii 1.0 -> 0.8 along z from 5 to 10, at x = y = 0
    p = s.sample(20000, np.random.default_rng(1))
    sel = (p[:, 2] > 5.5) & (p[:, 2] < 9.5) & (np.abs(p[:, 0]) < 2) & (np.abs(p[:, 1]) < 2)
    r = np.linalg.norm(p[sel, :2], axis=1)
    np.testing.assert_allclose(r, 1.0 + (0.8 - 1.0) * (p[sel, 2] - 5) / 5, atol=1e-9)


def test_mesh_points_lie_on_the_mesh():
    m = trimesh.creation.annulus(r_min=1.0, r_max=2.5, height=3.0)
    s = MeshSurface(m.vertices, m.faces)
    p = s.sample(2000, np.random.default_rng(0))
    _, dist, _ = trimesh.proximity.closest_point(m, p)
    assert dist.max() < 1e-9
    # area weighting: the share of points on each face matches its share of the area
    _, _, tri = trimesh.proximity.closest_point(m, p)
    assert np.corrcoef(np.bincount(tri, minlength=len(m.faces)), m.area_faces)[0, 1] > 0.8


def test_crop_is_uniform_inside_ball():
    # A flat square: the crop of a plane by a ball is a disk, uniform in area.
    v = np.array([[-50, -50, 0], [50, -50, 0], [50, 50, 0], [-50, 50, 0]], float)
    s = MeshSurface(v, np.array([[0, 1, 2], [0, 2, 3]]))
    pts, area = Cropper(s, 10.0).crop(np.zeros(3), 20000, np.random.default_rng(0))
    r = np.linalg.norm(pts, axis=1)
    assert r.max() <= 10 and abs(pts[:, 2]).max() == 0
    assert (r < 10 / np.sqrt(2)).mean() == pytest.approx(0.5, abs=0.02)  # half the disk's area
    assert area == pytest.approx(np.pi * 100, rel=0.05)


def test_anchors_spaced_along_cable():
    xyz = np.array([[0, 0, 0], [100, 0, 0], [100, 50, 0]], float)
    pos, node = anchors_along_cable(xyz, np.array([-1, 0, 1]), 10.0, np.random.default_rng(0))
    assert len(pos) == 15
    assert np.allclose(np.diff(pos[:10, 0]), 10)


def test_fragments_in_unit_ball_and_reproducible(navis_neuron):
    a = make_fragments(navis_neuron, radius=10, points=256, max_fragments=6, seed=3)
    b = make_fragments(navis_neuron, radius=10, points=256, max_fragments=6, seed=3)
    c = make_fragments(navis_neuron, radius=10, points=256, max_fragments=6, seed=4)
    assert a.points.shape == (6, 256, 3) and a.points.dtype == np.float32
    assert (np.linalg.norm(a.points, axis=-1) <= 1 + 1e-6).all()
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.anchor_um, b.anchor_um)
    assert not np.array_equal(a.anchor_um, c.anchor_um)
    assert set(a.neurite_type.tolist()) <= {0, 1, 2, 3}
    # every crop's points come from the neuron's own mesh surface, within R of its anchor
    pts_um = a.points.astype(np.float64) * 10 + a.anchor_um[:, None]
    _, dist, _ = trimesh.proximity.closest_point(navis_neuron.mesh, pts_um.reshape(-1, 3))
    assert dist.max() < 1e-3  # µm; float32 unit-ball storage rounds to ~1e-6 R
    assert (np.linalg.norm(pts_um - a.anchor_um[:, None], axis=-1) <= 10 + 1e-4).all()
    # and the anchors lie on the neuron's cable: within half the longest edge of a skeleton node
    from scipy.spatial import cKDTree

    from mogen.data.surface import skeleton_geometry

    xyz, _, _, pidx = skeleton_geometry(navis_neuron.skeleton)
    longest = np.linalg.norm(xyz[pidx >= 0] - xyz[pidx[pidx >= 0]], axis=1).max()
    assert cKDTree(xyz).query(a.anchor_um)[0].max() <= longest / 2 + 1e-3
    assert a.cable_ends.min() >= 1 and (a.caliber > 0).all() and (a.caliber < 1).all()


def test_skeleton_fragments_from_swc():
    n = load_file(DATA / "swc" / "quirky.swc")
    with pytest.warns(UserWarning):
        fr = make_fragments(n, radius=5, points=128, spacing=5, seed=0)
    assert len(fr) >= 4 and (np.linalg.norm(fr.points, axis=-1) <= 1 + 1e-6).all()
    assert set(fr.neurite_type.tolist()) <= {0, 1, 2, 3}


def test_neuron_smaller_than_one_crop():
    n = load_file(DATA / "swc" / "tiny.swc")
    with pytest.raises(DataError, match=r"tiny.swc: neuron: neuron is smaller than one crop: 2 µm of cable < crop diameter 20 µm"):
        make_fragments(n, radius=10)


def test_lone_mesh_units_and_skeletonisation(tmp_path):
    m = trimesh.creation.cylinder(radius=1500, height=40000, sections=16)  # nm
    m = m.subdivide().subdivide()
    p = tmp_path / "tube.ply"
    m.export(p)
    n = load_file(p)
    assert n.units == "nm" and "guessed" in n.units_note
    assert n.mesh.extents[2] == pytest.approx(40.0)
    fr = make_fragments(n, radius=5, points=128, spacing=5, seed=0)
    assert len(fr) >= 3
    n2 = load_file(p, units="um")
    assert n2.mesh.extents[2] == pytest.approx(40000.0)


@pytest.mark.parametrize("n", [1, 2, 5, 10, 79])
def test_split_by_cell_has_no_leakage(n):
    ids = [f"n{i}" for i in range(n)]
    # every third file is a second file of the cell before it
    cell_of = {i: f"c{k - (k % 3 == 2)}" for k, i in enumerate(ids)}
    n_cells = len(set(cell_of.values()))
    for seed in range(5):
        s = split_neurons(ids, 0.1, 0.1, seed=seed, cell_of=cell_of)
        got = [i for k in SPLITS for i in s[k]]
        assert sorted(got) == sorted(ids)  # each file exactly once
        cells = {k: {cell_of[i] for i in s[k]} for k in SPLITS}
        assert not (cells["train"] & cells["val"]) and not (cells["train"] & cells["test"]) and not (cells["val"] & cells["test"])
        assert [len(cells[k]) for k in SPLITS] == list(split_counts(n_cells, 0.1, 0.1))  # counted in cells
        assert split_neurons(list(reversed(ids)), 0.1, 0.1, seed=seed, cell_of=cell_of) == s  # order does not matter


def test_default_split_gives_every_split_a_cell():
    assert split_counts(5, 0.1, 0.1) == (3, 1, 1)
    assert split_counts(3, 0.1, 0.1) == (1, 1, 1)
    assert split_counts(2, 0.1, 0.1) == (1, 0, 1)
    assert split_counts(5, 0.0, 0.1) == (4, 0, 1)
    assert split_counts(79, 0.1, 0.1) == (64, 7, 8)
    with pytest.raises(ValueError, match="sum to less than 1"):
        split_counts(5, 0.5, 0.5)


def test_mesh_takes_anchors_and_types_from_matching_swc(tmp_path):
    m = trimesh.creation.cylinder(radius=1.5, height=40, sections=24).subdivide().subdivide()
    m.apply_translation([0, 0, 20])
    m.export(tmp_path / "cell.ply")
    (tmp_path / "cell.swc").write_text("".join(f"{i + 1} 2 0 0 {4 * i} 1.5 {i if i else -1}\n" for i in range(11)))
    n = load_file(tmp_path / "cell.ply")
    assert n.kind == "mesh" and n.skeleton.n_nodes == 11
    fr = make_fragments(n, radius=5, points=256, spacing=5, seed=0)
    assert (fr.neurite_type == 2).all()
    pts = fr.points * 5 + fr.anchor_um[:, None]
    _, dist, _ = trimesh.proximity.closest_point(m, pts.reshape(-1, 3)[::7])
    assert dist.max() < 1e-4  # crops are of the mesh, not of the skeleton's tube


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".off", ".glb"])
def test_mesh_formats_read(tmp_path, suffix):
    from mogen.data.mesh import read_mesh

    m = trimesh.creation.icosphere(subdivisions=2, radius=3000.0)  # nm
    p = tmp_path / f"cell{suffix}"
    m.export(p)
    mesh, unit, note = read_mesh(p)
    assert unit == "nm" and mesh.extents.max() == pytest.approx(6.0, rel=1e-3)
    assert read_mesh(p, units="um")[0].extents.max() == pytest.approx(6000.0, rel=1e-3)
