"""Reading neuron surface meshes (OBJ, PLY, STL, OFF, GLB via trimesh; navis MeshNeuron) in µm.

Refused with :class:`MeshError` naming the file, the element and the problem: unreadable
files, point clouds and line sets (no faces), empty or zero-area meshes, non-finite vertices,
faces that refer to missing vertices, and meshes whose units cannot be guessed (vertices on a
grid of half units: voxel coordinates, which need ``--units``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mogen.errors import MeshError
from .units import guess_mesh_units, to_um

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")


def check_mesh(vertices: np.ndarray, faces: np.ndarray, file) -> None:
    """Raise :class:`MeshError` for an empty, face-less, non-finite, out-of-range or zero-area mesh."""
    if len(vertices) and not len(faces):
        raise MeshError(file, "mesh", f"point cloud without faces ({len(vertices)} vertices): a surface mesh is needed "
                        "(or give the neuron's skeleton as .swc)")
    if len(vertices) == 0 or len(faces) == 0:
        raise MeshError(file, "mesh", f"empty mesh ({len(vertices)} vertices, {len(faces)} faces)")
    bad = np.nonzero(~np.isfinite(vertices).all(1))[0]
    if len(bad):
        raise MeshError(file, f"vertex {bad[0]}", f"non-finite coordinate {vertices[bad[0]].tolist()} ({len(bad)} such vertices)")
    out = np.nonzero(((faces < 0) | (faces >= len(vertices))).any(1))[0]
    if len(out):
        raise MeshError(file, f"face {out[0]}", f"refers to vertex {faces[out[0]].tolist()} but the mesh has {len(vertices)} vertices")
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not (area > 0).any():
        raise MeshError(file, "mesh", f"degenerate mesh: all {len(faces)} faces have zero area")


def read_mesh(path, units=None):
    """Read a mesh file as a :class:`trimesh.Trimesh` in µm.

    Returns ``(mesh, unit, unit_note)``. Units: ``units`` if given, else the file's own
    (trimesh reads them from some formats; not glTF, whose "metres" is a spec default), else a guess from the median edge length
    (:func:`mogen.data.units.guess_mesh_units`).

    Examples
    --------
    >>> import trimesh, tempfile, os
    >>> p = tempfile.mktemp(suffix=".ply")
    >>> _ = trimesh.creation.box(extents=(800, 800, 800)).export(p)
    >>> m, unit, note = read_mesh(p); os.unlink(p)
    >>> unit, round(float(m.extents[0]), 3)
    ('nm', 0.8)
    """
    import trimesh

    path = Path(path)
    try:
        loaded = trimesh.load(str(path), process=False)
        if isinstance(loaded, trimesh.Scene):  # several parts (glTF, some OBJ): one mesh, transforms applied
            parts = loaded.dump(concatenate=False)
            meshes = [g for g in parts if isinstance(g, trimesh.Trimesh)]
            points = sum(len(g.vertices) for g in parts if isinstance(g, trimesh.PointCloud))
            loaded = (trimesh.util.concatenate(meshes) if len(meshes) > 1 else meshes[0] if meshes
                      else trimesh.PointCloud(np.zeros((points, 3))) if points else trimesh.Trimesh())
    except Exception as exc:
        raise MeshError(path, "file", f"cannot read mesh ({type(exc).__name__}: {exc})") from None
    if isinstance(loaded, trimesh.PointCloud):
        raise MeshError(path, "file", f"point cloud without faces ({len(loaded.vertices)} points): a surface mesh is "
                        "needed (or give the neuron's skeleton as .swc)")
    if not isinstance(loaded, trimesh.Trimesh):
        what = "lines without faces" if "Path" in type(loaded).__name__ else f"got {type(loaded).__name__}"
        raise MeshError(path, "file", f"no triangle mesh in file ({what})")
    v = np.asarray(loaded.vertices, dtype=np.float64)
    f = np.asarray(loaded.faces, dtype=np.int64)
    check_mesh(v, f, path)
    if units is not None:
        unit, note = str(units), "from --units"
    elif getattr(loaded, "units", None) and path.suffix.lower() not in (".glb", ".gltf"):
        # glTF declares metres by specification, whatever the exporter's coordinates were,
        # so its unit says nothing; other formats only carry a unit when one was written.
        unit, note = str(loaded.units), "from file"
    else:
        unit, note = guess_mesh_units(v, f)
        if unit is None:
            raise MeshError(path, "units", f"{note}; give --units (e.g. '8 nanometer' for 8 nm voxels, or 'um')")
    try:
        scale = to_um(unit)
    except ValueError as exc:
        raise MeshError(path, "units", str(exc)) from None
    return trimesh.Trimesh(v * scale, f, process=False), unit, note


def mesh_from_navis(neuron, units=None):
    """A navis MeshNeuron's mesh as a trimesh in µm (honouring ``neuron.units``)."""
    import trimesh

    unit = units if units is not None else neuron.units
    v = np.asarray(neuron.vertices, dtype=np.float64)
    f = np.asarray(neuron.faces, dtype=np.int64)
    check_mesh(v, f, f"navis neuron {neuron.id}")
    return trimesh.Trimesh(v * to_um(unit), f, process=False)


MESH_WRITE_SUFFIXES = (".ply", ".obj", ".stl", ".off", ".glb")


def write_mesh(mesh, path, require_watertight: bool = True):
    """Write a :class:`trimesh.Trimesh` in µm; the format follows the suffix (``MESH_WRITE_SUFFIXES``).

    Refuses (:class:`MeshError`) an empty mesh, an unknown suffix and, with
    ``require_watertight``, a mesh that is not closed.

    Examples
    --------
    >>> import trimesh, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "ball.ply")
    >>> _ = write_mesh(trimesh.creation.icosphere(), p)
    >>> round(float(read_mesh(p, units="um")[0].volume), 2)  # an icosphere, a little under 4/3 pi
    4.15
    """
    from pathlib import Path

    path = Path(path)
    if path.suffix.lower() not in MESH_WRITE_SUFFIXES:
        raise MeshError(path, "file name", f"unknown mesh format {path.suffix!r}; use one of {', '.join(MESH_WRITE_SUFFIXES)}")
    if len(mesh.faces) == 0:
        raise MeshError(path, "mesh", "empty mesh: nothing to write")
    if require_watertight and not mesh.is_watertight:
        raise MeshError(path, "mesh", "not watertight (open edges); refusing to write it as a closed surface")
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    return path
