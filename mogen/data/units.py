"""Length units: everything downstream of reading is in micrometres (µm).

A unit is anything pint understands (``"nm"``, ``"um"``, ``"µm"``, ``"8 nanometer"``,
``"0.4 micrometer"`` for voxels of 0.4 µm) or a pint quantity such as a navis neuron's
``.units``. SWC files are µm by convention; meshes carry no unit, so unless told we guess
from their median edge length (see :func:`guess_mesh_units`).
"""

from __future__ import annotations

import numpy as np

DEFAULT_SWC_UNITS = "um"
# A median mesh edge longer than this many units means the mesh is in nm: in µm it would be a
# neuron drawn with 20 µm triangles, in nm a mesh at 20 nm resolution (finer than EM voxels).
NM_EDGE_THRESHOLD = 20.0
# Marching cubes puts two of a vertex's three coordinates on the voxel grid (all three on half
# voxels for a binary mask); a mesh in µm or nm does not sit on a grid of half units.
VOXEL_GRID_SHARE = 0.6
VOXEL_MIN_VERTICES = 100


def _ureg():
    import pint

    try:  # share navis's registry so its quantities convert without cross-registry errors
        import navis

        return navis.config.ureg
    except Exception:  # pragma: no cover - navis is a dependency
        return pint.UnitRegistry()


def to_um(unit) -> float:
    """Factor that converts lengths in ``unit`` to µm.

    Examples
    --------
    >>> to_um("8 nanometer")
    0.008
    >>> to_um("µm"), to_um("mm")
    (1.0, 1000.0)
    """
    ureg = _ureg()
    if unit is None:
        return 1.0
    if isinstance(unit, (int, float, np.floating)):
        return float(unit)
    try:
        q = ureg(str(unit).replace("µ", "u").replace("μ", "u")) if isinstance(unit, str) else unit
        factor = float((1.0 * q).to("micrometer").magnitude)
    except Exception as exc:
        raise ValueError(f"cannot understand length unit {unit!r} ({exc}); try 'nm', 'um' or '8 nanometer'") from None
    if not np.isfinite(factor) or factor <= 0:
        raise ValueError(f"length unit {unit!r} gives a non-positive scale {factor}")
    return factor


def unit_name(unit) -> str:
    """Short printable name of a unit (``"8 nanometer"``, ``"um"``)."""
    return str(unit) if unit is not None else DEFAULT_SWC_UNITS


def guess_mesh_units(vertices: np.ndarray, faces: np.ndarray) -> tuple[str | None, str]:
    """Guess a mesh's units from its median edge length.

    Returns ``(unit, reason)``; unit ``None`` when the mesh looks like voxel coordinates (a
    median edge of at most ``NM_EDGE_THRESHOLD`` and most vertex coordinates on a grid of
    half units, as marching cubes writes them): the voxel size cannot be guessed.

    Examples
    --------
    >>> v = np.array([[0, 0, 0], [300, 0, 0], [0, 300, 0]], float)
    >>> guess_mesh_units(v, np.array([[0, 1, 2]]))[0]
    'nm'
    """
    if len(faces) == 0:
        return "um", "no faces; assumed um"
    e = vertices[faces] - vertices[np.roll(faces, 1, axis=1)]
    med = float(np.median(np.linalg.norm(e, axis=-1)))
    if med > NM_EDGE_THRESHOLD:
        return "nm", f"guessed: median edge {med:.3g} > {NM_EDGE_THRESHOLD:g} units, so nm (override with --units)"
    on_grid = float(np.mean(np.abs(vertices * 2 - np.round(vertices * 2)) < 1e-6)) if len(vertices) >= VOXEL_MIN_VERTICES else 0.0
    if on_grid >= VOXEL_GRID_SHARE:
        return None, (f"median edge {med:.3g} units and {on_grid:.0%} of the vertex coordinates on a grid of half "
                      "units: looks like voxel coordinates (or nm on a fine voxel grid), whose size cannot be guessed")
    return "um", f"guessed: median edge {med:.3g} <= {NM_EDGE_THRESHOLD:g} units, so um (override with --units)"
