"""Mesh reader: what is not a surface mesh is named as such; units near the guess threshold and
in voxels."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from mogen.data.mesh import read_mesh
from mogen.data.neuron import load_file
from mogen.data.units import NM_EDGE_THRESHOLD, guess_mesh_units
from mogen.errors import MeshError


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_point_cloud_is_named_a_point_cloud(tmp_path, suffix):
    p = tmp_path / f"cloud{suffix}"
    trimesh.PointCloud(np.random.default_rng(0).random((50, 3))).export(p)
    with pytest.raises(MeshError, match=rf"cloud{suffix}: .*point cloud without faces \(50 (points|vertices)\)"):
        read_mesh(p)


def test_empty_unreadable_and_line_files(tmp_path):
    (tmp_path / "empty.stl").write_bytes(b"")
    with pytest.raises(MeshError, match=r"empty.stl: mesh: empty mesh \(0 vertices, 0 faces\)"):
        read_mesh(tmp_path / "empty.stl")
    (tmp_path / "bad.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1\n2\n")
    with pytest.raises(MeshError, match=r"bad.ply: file: cannot read mesh"):
        read_mesh(tmp_path / "bad.ply")
    (tmp_path / "lines.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nl 1 2 3\n")
    with pytest.raises(MeshError, match=r"lines.obj: file: point cloud without faces \(3 points\)"):
        read_mesh(tmp_path / "lines.obj")


def test_multi_part_scene_is_one_mesh(tmp_path):
    parts = [trimesh.creation.icosphere(radius=2000.0), trimesh.creation.icosphere(radius=1000.0).apply_translation([8000, 0, 0])]
    p = tmp_path / "parts.glb"
    trimesh.Scene(parts).export(p)
    mesh, unit, _ = read_mesh(p)
    assert unit == "nm" and len(mesh.faces) == sum(len(m.faces) for m in parts)
    assert mesh.bounds[1, 0] == pytest.approx(9.0, rel=1e-3)  # µm; the second part's transform applied


def _sphere_with_median_edge(edge: float) -> trimesh.Trimesh:
    m = trimesh.creation.icosphere(subdivisions=3)
    m.apply_translation([0.123, 0.456, 0.789])  # off any grid
    med = np.median(m.edges_unique_length)
    return m.apply_scale(edge / med)


@pytest.mark.parametrize("edge, unit", [(NM_EDGE_THRESHOLD * 0.99, "um"), (NM_EDGE_THRESHOLD * 1.01, "nm")])
def test_unit_guess_at_its_threshold(tmp_path, edge, unit):
    m = _sphere_with_median_edge(edge)
    assert guess_mesh_units(m.vertices, m.faces)[0] == unit
    p = tmp_path / "cell.ply"
    m.export(p)
    mesh, got, note = read_mesh(p)
    assert got == unit and "guessed" in note
    scale = 1.0 if unit == "um" else 1e-3
    assert mesh.extents.max() == pytest.approx(m.extents.max() * scale, rel=1e-6)


def _voxel_mesh(smooth: bool) -> trimesh.Trimesh:
    from scipy import ndimage
    from skimage.measure import marching_cubes

    vol = np.zeros((30, 30, 90))
    vol[10:20, 10:20, 5:85] = 1  # a 10-voxel-wide neurite, 80 voxels long
    if smooth:
        vol = ndimage.gaussian_filter(vol, 1.5)
    v, f, _, _ = marching_cubes(vol, 0.3 if smooth else 0.5)
    return trimesh.Trimesh(v, f, process=False)


@pytest.mark.parametrize("smooth", [False, True])
def test_voxel_unit_mesh_needs_units(tmp_path, smooth):
    m = _voxel_mesh(smooth)
    p = tmp_path / "seg.ply"
    m.export(p)
    # median edge ~1 voxel would pass for µm: 125x too big at 8 nm voxels. Refused, with a way out.
    with pytest.raises(MeshError, match=r"seg.ply: units: median edge .* looks like voxel coordinates.*give --units"):
        load_file(p)
    mesh, unit, note = read_mesh(p, units="8 nanometer")
    assert note == "from --units" and mesh.extents[2] == pytest.approx(m.extents[2] * 0.008)
    # the same mesh scaled to µm off the grid is guessed as µm again
    off = m.copy().apply_translation([0.0137, 0.0291, 0.0173]).apply_scale(0.9137)
    assert guess_mesh_units(off.vertices, off.faces)[0] == "um"


def test_nan_vertex_and_bad_face_index(tmp_path):
    p = tmp_path / "nan.ply"
    m = trimesh.creation.icosphere()
    v = m.vertices.copy()
    v[5, 1] = np.inf
    trimesh.Trimesh(v, m.faces, process=False).export(p)
    with pytest.raises(MeshError, match=r"nan.ply: vertex 5: non-finite coordinate"):
        read_mesh(p)
    q = tmp_path / "face.obj"
    q.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 9\n")
    with pytest.raises(MeshError, match=r"face.obj: file: cannot read mesh \(IndexError: index 8 is out of bounds"):
        read_mesh(q)
