"""A neuron ready for fragmenting: skeleton (+ optional mesh) in µm, with neurite types.

Sources: SWC files, mesh files (with a same-named SWC beside them, or skeletonised with
navis/skeletor; a clearly thickest node marks the soma), ``.asc``/``.h5`` through MorphIO when installed, and navis neurons (the
default data: navis's example meshes with their matching skeletons).

Neurite types per skeleton node (codes of :data:`mogen.data.conditions.NEURITE_TYPES`):
SWC type 1 → soma, 2 → axon, 3/4 (basal/apical) → dendrite, anything else → unknown.
navis example neurons have no SWC types; there ``navis.split_axon_dendrite`` (synapse flow
centrality, from their connectors) labels axon and dendrite, the primary neurite ("linker")
stays unknown and nodes within the soma radius are soma.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mogen.errors import DataError, UsageError
from .mesh import MESH_SUFFIXES, mesh_from_navis, read_mesh
from .swc import read_swc
from .units import DEFAULT_SWC_UNITS, to_um

SWC_TYPE_TO_NEURITE = {1: 1, 2: 2, 3: 3, 4: 3}
MORPHIO_SUFFIXES = (".asc", ".h5")
SKELETON_SUFFIXES = (".swc",) + MORPHIO_SUFFIXES
SUFFIXES = SKELETON_SUFFIXES + MESH_SUFFIXES


@dataclass
class Neuron:
    """One neuron in µm.

    ``skeleton`` is a navis TreeNeuron; ``node_types`` its per-node neurite type codes
    (row-aligned with ``skeleton.nodes``); ``mesh`` a trimesh or None (surface then comes
    from the skeleton's tube).
    """

    id: str
    source: str
    kind: str  # "mesh" or "skeleton"
    skeleton: object
    node_types: np.ndarray
    mesh: object = None
    units: str = "um"
    units_note: str = ""
    soma_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def collect_inputs(inputs: list[str]) -> list[tuple[Path, str]]:
    """Files to read with their neuron ids (stems; with parent folders where stems collide).

    Raises :class:`UsageError` for a missing input, a file of an unsupported type and a folder
    without supported files.
    """
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not files:
                raise UsageError(f"input folder {item} holds no supported files ({' '.join(SUFFIXES)}, searched recursively)")
            meshes = {f.with_suffix("") for f in files if f.suffix.lower() not in (".swc", ".asc", ".h5")}
            # An SWC beside a same-named mesh is that mesh's skeleton, not a second neuron.
            files = [f for f in files if not (f.suffix.lower() == ".swc" and f.with_suffix("") in meshes)]
            found += files
        elif p.is_file():
            if p.suffix.lower() not in SUFFIXES:
                raise UsageError(f"input {item}: unsupported file type {p.suffix or '(none)'!r}; supported: {' '.join(SUFFIXES)}")
            found.append(p)
        else:
            raise UsageError(f"input not found: {item}")
    n_morphio = sum(f.suffix.lower() in MORPHIO_SUFFIXES for f in found)
    if n_morphio:
        try:
            import morphio  # noqa: F401
        except ImportError:
            raise UsageError(f"{n_morphio} .asc/.h5 input(s) need MorphIO: pip install 'mogen[morphio]'") from None
    seen, unique = set(), []
    for f in found:  # the same file named twice is one neuron, not two
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append(f)
    return list(zip(unique, _neuron_ids(unique)))


def _neuron_ids(files: list[Path]) -> list[str]:
    """File stems; where stems collide, as many parent folders as tell the files apart.

    Examples
    --------
    >>> _neuron_ids([Path("a/x/C1.swc"), Path("b/x/C1.swc"), Path("b/C2.swc"), Path("c/y/C3.swc")])
    ['a/x/C1', 'b/x/C1', 'C2', 'C3']
    """
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(files):
        groups.setdefault(f.stem, []).append(i)
    ids = [""] * len(files)
    for stem, members in groups.items():
        parts = [files[i].resolve().with_suffix("").parts for i in members]
        for k in range(1, max(map(len, parts)) + 1):
            names = ["/".join(p[-k:]) for p in parts]
            if len(set(names)) == len(names):
                break
        for i, name in zip(members, names):
            ids[i] = name
    used: set[str] = set()
    for i, nid in enumerate(ids):  # a stem that spells another file's folder/stem id
        base, k = nid, 1
        while nid in used:
            k += 1
            nid = f"{base}~{k}"
        used.add(nid)
        ids[i] = nid
    return ids


def parse_type_map(text: str | None) -> dict[int, int]:
    """``"6=axon,7=dendrite"`` -> ``{6: 2, 7: 3}`` (SWC code -> neurite type code).

    Examples
    --------
    >>> parse_type_map("6=axon, 7=dendrite")
    {6: 2, 7: 3}
    """
    from .conditions import NEURITE_TYPES

    out = {}
    for item in filter(None, (t.strip() for t in (text or "").split(","))):
        code, _, name = item.partition("=")
        if not code.strip().lstrip("-").isdigit() or name.strip() not in NEURITE_TYPES:
            raise ValueError(f"bad type map entry {item!r}; expected CODE=TYPE with TYPE one of {', '.join(NEURITE_TYPES)}")
        out[int(code)] = NEURITE_TYPES.index(name.strip())
    return out


def swc_node_types(labels: np.ndarray, type_map: dict[int, int] | None = None) -> np.ndarray:
    """Neurite type codes from SWC type codes (unknown for non-standard codes unless mapped).

    Examples
    --------
    >>> swc_node_types(np.array([1, 2, 3, 4, 7]), {7: 2}).tolist()
    [1, 2, 3, 3, 2]
    """
    out = np.zeros(len(labels), np.int8)
    for code, t in {**SWC_TYPE_TO_NEURITE, **(type_map or {})}.items():
        out[np.asarray(labels) == code] = t
    return out


def _read_morphio(path: Path, units):
    """Read .asc/.h5 with MorphIO (optional dependency) into a TreeNeuron via SWC rows."""
    try:
        import morphio
    except ImportError:
        raise DataError(path, "", "reading .asc/.h5 needs MorphIO: pip install 'mogen[morphio]'") from None
    from .swc import parse_swc
    import navis

    try:
        m = morphio.Morphology(str(path), options=morphio.Option.allow_unifurcated_section_change)
    except Exception as exc:
        raise DataError(path, "file", f"MorphIO cannot read it ({exc})") from None
    rows, nid = [], 0
    soma_pts, soma_d = np.asarray(m.soma.points), np.asarray(m.soma.diameters)
    parent_soma = -1
    for p, d in zip(soma_pts, soma_d):
        nid += 1
        rows.append(f"{nid} 1 {p[0]} {p[1]} {p[2]} {d / 2} {parent_soma}")
        parent_soma = nid
    last = {}
    for sec in m.iter():
        par = last[sec.parent.id] if not sec.is_root else (1 if len(soma_pts) else -1)
        code = int(sec.type)
        for k, (p, d) in enumerate(zip(sec.points, sec.diameters)):
            if k == 0 and not sec.is_root:
                continue  # MorphIO repeats the parent's last point at a section's start
            nid += 1
            rows.append(f"{nid} {code} {p[0]} {p[1]} {p[2]} {d / 2} {par}")
            par = nid
        last[sec.id] = par
    df = parse_swc("\n".join(rows), file=path)
    df.pop("line")
    scale = to_um(units or DEFAULT_SWC_UNITS)
    df[["x", "y", "z", "radius"]] *= scale
    return navis.TreeNeuron(df, units="1 micrometer", name=path.stem, id=path.stem)


def skeletonize_mesh(mesh, name: str):
    """A skeleton (µm) for a lone mesh, via navis/skeletor's wavefront method."""
    import navis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mn = navis.MeshNeuron(mesh, units="1 micrometer", id=name)
        sk = navis.skeletonize(mn, method="wavefront", heal=True, inv_dist=None, progress=False)
    sk.nodes["label"] = 0
    return sk


def soma_from_radii(skeleton, min_radius_um: float = 2.0, ratio: float = 4.0) -> np.ndarray:
    """Neurite types for a skeletonised mesh: soma around a clearly thickest node, else unknown.

    If the largest node radius is at least ``min_radius_um`` and ``ratio`` times the median,
    the nodes within that radius of it are soma; axon and dendrite cannot be told from shape
    alone, so everything else stays unknown.
    """
    r = skeleton.nodes.radius.to_numpy(float)
    types = np.zeros(len(r), np.int8)
    if len(r) == 0:
        return types
    i = int(np.nanargmax(r))
    if r[i] >= min_radius_um and r[i] >= ratio * np.nanmedian(r):
        xyz = skeleton.nodes[["x", "y", "z"]].to_numpy(float)
        types[np.linalg.norm(xyz - xyz[i], axis=1) <= r[i]] = 1
    return types


def load_file(path, neuron_id: str | None = None, units=None, type_map: dict[int, int] | None = None) -> Neuron:
    """Read one file into a :class:`Neuron` (raises :class:`DataError` on bad input)."""
    path = Path(path)
    nid = neuron_id or path.stem
    suffix = path.suffix.lower()
    if suffix == ".swc":
        sk = read_swc(path, units=units, name=nid)
        return Neuron(nid, str(path), "skeleton", sk, swc_node_types(sk.nodes.label.to_numpy(), type_map),
                      units=str(units or DEFAULT_SWC_UNITS), units_note="from --units" if units else "SWC default")
    if suffix in MORPHIO_SUFFIXES:
        sk = _read_morphio(path, units)
        return Neuron(nid, str(path), "skeleton", sk, swc_node_types(sk.nodes.label.to_numpy(), type_map),
                      units=str(units or DEFAULT_SWC_UNITS), units_note="from --units" if units else "SWC default")
    if suffix in MESH_SUFFIXES:
        mesh, unit, note = read_mesh(path, units=units)
        partner = path.with_suffix(".swc")
        if partner.exists():  # a matching skeleton gives anchors and neurite types
            sk = read_swc(partner, units=units if units else None, name=nid)
            types = swc_node_types(sk.nodes.label.to_numpy(), type_map)
        else:
            try:
                sk = skeletonize_mesh(mesh, nid)
            except Exception as exc:
                raise DataError(path, "mesh", f"could not skeletonise the mesh ({type(exc).__name__}: {exc})") from None
            types = soma_from_radii(sk)
        return Neuron(nid, str(path), "mesh", sk, types, mesh=mesh, units=unit, units_note=note)
    raise DataError(path, "", f"unsupported file type {suffix!r} (expected one of {', '.join(SUFFIXES)})")


def _navis_types(sk) -> tuple[np.ndarray, str]:
    """Axon/dendrite labels from navis's synapse-flow split; unknown where it cannot run."""
    import navis

    types = np.zeros(sk.n_nodes, np.int8)
    try:
        x = sk if sk.n_trees == 1 else navis.heal_skeleton(sk)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            split = navis.split_axon_dendrite(x, metric="synapse_flow_centrality", label_only=True)
        comp = split.nodes.set_index("node_id").compartment.reindex(sk.nodes.node_id).to_numpy()
        types[comp == "axon"] = 2
        types[comp == "dendrite"] = 3
        how = "navis.split_axon_dendrite"
    except Exception as exc:
        how = f"unknown (split_axon_dendrite failed: {type(exc).__name__})"
    return types, how


def from_navis(mesh_neuron, skeleton, units=None, source: str | None = None) -> Neuron:
    """A :class:`Neuron` from a navis MeshNeuron (may be None) and its TreeNeuron."""
    import navis

    unit = units if units is not None else skeleton.units
    s = to_um(unit)
    types, how = _navis_types(skeleton)
    nodes = skeleton.nodes[["node_id", "parent_id", "x", "y", "z", "radius"]].copy()
    nodes[["x", "y", "z", "radius"]] = nodes[["x", "y", "z", "radius"]].astype(float) * s
    nodes["label"] = 0
    nid = str(skeleton.id)
    sk = navis.TreeNeuron(nodes, units="1 micrometer", id=nid, name=nid)
    soma = np.atleast_1d(skeleton.soma if skeleton.soma is not None else [])
    soma = np.asarray([x for x in soma if x is not None], dtype=np.int64)
    if len(soma):
        xyz = nodes[["x", "y", "z"]].to_numpy()
        ids = nodes.node_id.to_numpy()
        for sid in soma:
            row = np.nonzero(ids == sid)[0][0]
            near = np.linalg.norm(xyz - xyz[row], axis=1) <= max(nodes.radius.iloc[row], 1e-9)
            types[near] = 1
    mesh = mesh_from_navis(mesh_neuron, units) if mesh_neuron is not None else None
    return Neuron(nid, source or f"navis:{nid}", "mesh" if mesh is not None else "skeleton", sk, types,
                  mesh=mesh, units=str(unit), units_note=f"navis units; neurite types: {how}", soma_nodes=soma)


def navis_examples(units=None) -> list[Neuron]:
    """The 5 navis example neurons: meshes with their matching skeletons."""
    import navis

    return [navis_example(i, units) for i in range(len(navis.example_neurons(kind="skeleton")))]


def navis_example(index: int, units=None) -> Neuron:
    """One of the 5 navis example neurons (mesh with its skeleton), by position."""
    import navis

    # navis reads its examples in a fixed order: the first index + 1 are enough (not all 5 for each)
    sk = navis.example_neurons(index + 1, kind="skeleton")  # synapses: the axon/dendrite split reads them
    sk = sk[index] if index else sk
    meshes = navis.example_neurons(index + 1, kind="mesh", synapses=False)
    mesh = {m.id: m for m in (meshes if index else [meshes])}.get(sk.id)
    return from_navis(mesh, sk, units, source=f"navis.example_neurons:{sk.id}")
