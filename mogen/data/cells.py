"""Which input files hold the same cell: groups that a split must keep together.

The same cell ships under several files: copied between packages (``bluepyemodel/C060114A5``
and ``morphology-workflows/C060114A5``), repaired or resampled, split into an axon file and a
dendrite file, or spliced into "mosaics" (the dendrites of one cell with the axon of another,
named ``dend-X_axon-Y``). A split by file would put one cell in train and test. Here every file
gets a :class:`Fingerprint` (names and a few content signatures) and :func:`group_cells`
joins two files when one signal says they share a cell; groups are transitive (union-find),
so a mosaic joins the group of every cell it contains.

Signals (each recorded in the group's ``reasons``):

1. **Same cell id in the name.** Names come from the file name and from SWC header lines
   that name the cell (NeuroMorpho ``neuron_name=X``, MouseLight ``Neuron Id: X``, L-Measure
   ``Original fileName: .../X.CNG.swc``, StdSwc ``Original file X.swc edited``, Vaa3D
   ``source file(s): .../X.swc``). A name is normalised by :func:`normalise_name`:

   - package decorations at its end are stripped, repeatedly: file extensions
     (``.swc .asc .h5 .CNG .ims .std`` and mesh suffixes), EModelRunner's rescaled copies
     ``_-_Scale_x1.000_y0.975_z1.000`` and clones ``_-_Clone_0``, repair tags
     (``-cor-rep``, ``-cor-rep-ax2``) and processing words (``_centered``, ``_noAxon``,
     ``_diametrized``, ``_lite``, ``_repaired``, ``_resampled``, ``_transformed``, ...);
   - a mosaic ``dend-X_axon-Y`` names two cells, X and Y (each normalised);
   - case and separators do not count: ``IF1-030400`` = ``IF1_030400`` = ``if1.030400``.

   A normalised name is a cell id only if it can identify a cell: after dropping generic
   words (``test``, ``swc``, ``cell``, ``neuron``, ``sample``, ``example``, ``copy``, ...)
   it must keep at least 5 letters and digits, with at least one of each, and not be a word
   plus a small index (``cell4``, ``neuron_12``, ``purkinje2``). So ``test_swc``,
   ``pyramidal``, ``GranuleCell`` and purely numeric names (``165421``, a package's running
   number, or a segment id) never group files by name; their content still can.

2. **Identical node table**: the same multiset of (node, parent node, radius) positions,
   rounded to 0.05 µm, whatever the node ids, order or type codes.
3. **Shared nodes**: at least half of the smaller file's node positions (0.05 µm grid,
   estimated on a fixed 1-in-8 hash sample, at least 8 sampled nodes) also occur in the other
   file: a copy with a few nodes changed, or a cell and a mosaic that took its dendrites.
4. **Same soma contour**: the same set of at least 6 distinct soma node positions (0.05 µm
   grid). A 3-point NeuroMorpho soma or a single soma node at the origin is shared by every
   centred cell of that radius, so it does not count.
5. **Same soma position and cable**: soma centres (the root where there is no soma) within
   1 µm and total cable within 5%, or one file with axon only and the other without axon
   (the axon file and the dendrite file of one cell) within 10 µm. Only positions at least
   10 µm from the origin count: most files are centred on their soma, so there a position
   says nothing.

``python -m mogen.data.cells INPUT...`` prints the groups that ``mogen prepare`` would form.

Examples
--------
>>> normalise_name("dend-C280998A-P3_axon-sm110131a1-3_INT_idA")
['c280998a_p3', 'sm110131a1_3_int_ida']
>>> normalise_name("IF1_030400.CNG"), normalise_name("test_swc"), normalise_name("165421")
(['if1_030400'], [], [])
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GRID_UM = 0.05  # position rounding for content signatures
SAMPLE_MOD = 8  # node positions kept for the shared-node test: 1 in SAMPLE_MOD, by hash
SHARED_FRACTION = 0.5
MIN_SHARED_SAMPLES = 8
MIN_SOMA_POINTS = 6
SOMA_SAME_UM = 1.0
SOMA_AXON_UM = 10.0
CABLE_REL_TOL = 0.05
INFORMATIVE_UM = 10.0  # positions closer than this to the origin are a centring convention
MAX_FILES_PER_KEY = 50  # a node position in more files than this is a convention, not a cell

GENERIC_WORDS = frozenset(
    "test tests testing swc cell cells neuron neurons morph morpho morphology morphologies sample samples example "
    "examples data file files tree trees skeleton skeletons mesh meshes copy new untitled default out output input "
    "tmp temp final result dummy simple toy raw latest version v".split())
_EXTENSIONS = r"swc|asc|h5|cng|ims|std|nml|txt|obj|ply|stl|off|glb|gltf"
_TRAILING = [re.compile(p, re.I) for p in (
    rf"\.(?:{_EXTENSIONS})$",
    r"_-_scale_x[\d.]+_y[\d.]+_z[\d.]+$",  # EModelRunner rescaled copy
    r"_-_clone_\d+$",  # EModelRunner clone
    r"[-_]cor(?:[-_]rep)?(?:[-_]ax\d*)?$",  # corrected / repaired, with axon
    r"[-_](?:centered|centred|no[-_]?axon|diametrized|diametrised|lite|repaired|resampled|transformed|unravell?ed"
    r"|smoothed|simplified|sorted|standardi[sz]ed|scaled)$",
)]
_MOSAIC = re.compile(r"^dend-(?P<dend>.+?)_axon-(?P<axon>.+)$", re.I)
_HEADER = [re.compile(p, re.I) for p in (
    r"neuron_name=([^\s&#]+)",
    r"neuron\s*id:\s*(\S+)",
    r"original\s+filename:\s*(.+?)\s*$",
    r"original\s+file\s+(\S.*?)\s+edited\b",
    r"source\s+file\(s\):\s*(.+?)\s*$",
)]


def _strip(name: str) -> str:
    name = name.strip()
    while True:
        for pattern in _TRAILING:
            new = pattern.sub("", name)
            if new != name and new:
                name = new
                break
        else:
            return name


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def identifying(key: str) -> bool:
    """Whether a normalised name can identify one cell (see the module docstring).

    Examples
    --------
    >>> [identifying(k) for k in ("c060114a5", "aa0054", "test_swc", "cell4", "165421", "2019_11_13_cell5")]
    [True, True, False, False, False, True]
    """
    tokens = [t for t in key.split("_") if t and t not in GENERIC_WORDS]
    core = "".join(tokens)
    if len(core) < 5 or not re.search(r"[a-z]", core) or not re.search(r"\d", core):
        return False
    return not re.fullmatch(r"[a-z]+_?\d{1,3}", "_".join(tokens))


def normalise_name(name: str) -> list[str]:
    """The cell ids a file name (stem or path) stands for: zero, one or two (mosaics)."""
    base = _strip(re.split(r"[\\/]", str(name).strip())[-1])
    m = _MOSAIC.match(base)
    parts = [m["dend"], m["axon"]] if m else [base]
    keys = []
    for part in parts:
        k = _key(_strip(part))
        if identifying(k) and k not in keys:
            keys.append(k)
    return keys


def header_names(lines) -> list[str]:
    """Cell names stated in SWC header comment lines (NeuroMorpho, MouseLight, L-Measure, Vaa3D).

    Examples
    --------
    >>> header_names(["# https://neuromorpho.org/neuron_info.jsp?neuron_name=01_NC_7",
    ...               "# Original fileName:C:\\\\data\\\\Source_Temp1//01_NC_7.CNG.swc"])
    ['01_NC_7', '01_NC_7.CNG.swc']
    """
    out = []
    for line in lines:
        for pattern in _HEADER:
            m = pattern.search(line)
            if m:
                for item in re.split(r"[,;]", m.group(1)):
                    item = re.split(r"[\\/]", item.strip())[-1]
                    if item:
                        out.append(item)
    return out


@dataclass
class Fingerprint:
    """What :func:`group_cells` compares for one input file (small and picklable)."""

    neuron_id: str
    names: list[tuple[str, str]]  # (cell id, where it came from)
    table_hash: str = ""
    node_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))  # sampled, unique
    soma_hash: str | None = None
    soma_points: int = 0
    anchor_um: np.ndarray | None = None  # soma centre, or the root where there is no soma
    cable_um: float = 0.0
    axon_only: bool = False
    has_axon: bool = False


def _mix(q: np.ndarray) -> np.ndarray:
    """A 64-bit hash of integer rows [n, 3] (splitmix-style finaliser)."""
    with np.errstate(over="ignore"):
        h = (q[:, 0].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
             ^ q[:, 1].astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
             ^ q[:, 2].astype(np.uint64) * np.uint64(0x165667B19E3779F9))
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
    return h


def name_sources(stem: str, header=()) -> list[tuple[str, str]]:
    """``(cell id, source)`` pairs from a file stem and its header lines.

    Examples
    --------
    >>> name_sources("dend-sm100429a1-5_INT_idG_axon-sm100429a1-5_INT_idE_-_Scale_x1.000_y0.950_z1.000_-_Clone_0")
    [('sm100429a1_5_int_idg', 'file name (dendrites of mosaic)'), ('sm100429a1_5_int_ide', 'file name (axon of mosaic)')]
    """
    out = []
    mosaic = _MOSAIC.match(_strip(stem))
    for k, key in enumerate(normalise_name(stem)):
        where = "file name"
        if mosaic:
            where = "file name (dendrites of mosaic)" if key == _key(_strip(mosaic["dend"])) else "file name (axon of mosaic)"
        out.append((key, where))
    for name in header_names(header):
        for key in normalise_name(name):
            if key not in [k for k, _ in out]:
                out.append((key, "header"))
    return out


def fingerprint(neuron, header=None) -> Fingerprint:
    """The :class:`Fingerprint` of a :class:`mogen.data.neuron.Neuron` (skeleton in µm).

    ``header`` defaults to the SWC header lines the reader kept (``skeleton.swc_header``).
    """
    from .surface import skeleton_geometry

    sk = neuron.skeleton
    header = getattr(sk, "swc_header", []) if header is None else header
    source = str(neuron.source)
    stem = Path(source).stem if Path(source).suffix else str(neuron.id)
    fp = Fingerprint(str(neuron.id), name_sources(stem, header))
    xyz, radius, _, pidx = skeleton_geometry(sk)
    if not len(xyz) or not np.isfinite(xyz).all():
        return fp
    q = np.round(xyz / GRID_UM).astype(np.int64)
    qr = np.round(np.nan_to_num(radius) / GRID_UM).astype(np.int64)
    parent_q = np.where(pidx[:, None] >= 0, q[np.maximum(pidx, 0)], np.iinfo(np.int64).min)
    rows = np.concatenate([q, parent_q, qr[:, None]], axis=1)
    rows = rows[np.lexsort(rows.T[::-1])]
    fp.table_hash = hashlib.sha1(np.ascontiguousarray(rows).tobytes()).hexdigest()
    keys = np.unique(_mix(q))
    fp.node_keys = keys[keys % np.uint64(SAMPLE_MOD) == 0]
    types = np.asarray(neuron.node_types)
    soma = types == 1
    distinct = np.unique(q[soma], axis=0)
    if len(distinct) >= MIN_SOMA_POINTS:
        fp.soma_hash = hashlib.sha1(np.ascontiguousarray(distinct).tobytes()).hexdigest()
        fp.soma_points = len(distinct)
    roots = np.nonzero(pidx < 0)[0]
    fp.anchor_um = xyz[soma].mean(0) if soma.any() else xyz[roots[0]] if len(roots) else None
    child = np.nonzero(pidx >= 0)[0]
    fp.cable_um = float(np.linalg.norm(xyz[child] - xyz[pidx[child]], axis=1).sum())
    neurite = types[~soma]
    fp.has_axon = bool((neurite == 2).any())
    fp.axon_only = bool(len(neurite)) and bool((neurite == 2).all())
    return fp


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _content_pairs(fps: list[Fingerprint]) -> list[tuple[int, int, str]]:
    """Pairs of files that content says are one cell, with the reason."""
    pairs = []
    by_table, by_soma = defaultdict(list), defaultdict(list)
    for i, fp in enumerate(fps):
        if fp.table_hash:
            by_table[fp.table_hash].append(i)
        if fp.soma_hash:
            by_soma[fp.soma_hash].append(i)
    for group in by_table.values():
        pairs += [(group[0], j, "identical node table") for j in group[1:]]
    for group in by_soma.values():
        pairs += [(group[0], j, f"same soma contour ({fps[j].soma_points} points)") for j in group[1:]]
    # Shared node positions: count co-occurrences of sampled keys per pair of files.
    owners = defaultdict(list)
    for i, fp in enumerate(fps):
        for key in fp.node_keys.tolist():
            owners[key].append(i)
    shared = defaultdict(int)
    for files in owners.values():
        if 1 < len(files) <= MAX_FILES_PER_KEY:
            for a in range(len(files)):
                for b in range(a + 1, len(files)):
                    shared[files[a], files[b]] += 1
    for (a, b), n in sorted(shared.items()):
        small = min(len(fps[a].node_keys), len(fps[b].node_keys))
        if n >= MIN_SHARED_SAMPLES and n >= SHARED_FRACTION * small:
            pairs.append((a, b, f"{n / small:.0%} of the smaller file's node positions shared"))
    # Soma (or root) positions away from the origin.
    placed = [i for i, fp in enumerate(fps) if fp.anchor_um is not None and np.linalg.norm(fp.anchor_um) >= INFORMATIVE_UM]
    if len(placed) > 1:
        from scipy.spatial import cKDTree

        pos = np.stack([fps[i].anchor_um for i in placed])
        for a, b in sorted(cKDTree(pos).query_pairs(SOMA_AXON_UM)):
            fa, fb = fps[placed[a]], fps[placed[b]]
            d = float(np.linalg.norm(pos[a] - pos[b]))
            cable = max(fa.cable_um, fb.cable_um)
            if d <= SOMA_SAME_UM and cable > 0 and abs(fa.cable_um - fb.cable_um) <= CABLE_REL_TOL * cable:
                pairs.append((placed[a], placed[b], f"same soma position ({d:.2g} µm apart) and cable "
                                                    f"({fa.cable_um:.0f} vs {fb.cable_um:.0f} µm)"))
            elif (fa.axon_only and not fb.has_axon) or (fb.axon_only and not fa.has_axon):
                pairs.append((placed[a], placed[b], f"axon file and axon-less file at one soma ({d:.2g} µm apart)"))
    return pairs


def group_cells(fps: list[Fingerprint]) -> tuple[dict[str, str], dict[str, dict]]:
    """Group files into cells.

    Returns ``(cell_of, cells)``: neuron id -> cell id, and cell id -> ``{"files": [neuron
    ids], "reasons": [why they were grouped]}`` (no reasons for a cell of one file). A cell
    is named by the cell id most of its files share (ties: one from a file name before one
    from a header, then the first named, e.g. a mosaic's dendrite donor), else by its first
    neuron id.

    Examples
    --------
    >>> fps = [Fingerprint("a/C060114A5", [("c060114a5", "file name")]),
    ...        Fingerprint("b/C060114A5", [("c060114a5", "file name")]), Fingerprint("x", [])]
    >>> cell_of, cells = group_cells(fps)
    >>> cell_of
    {'a/C060114A5': 'c060114a5', 'b/C060114A5': 'c060114a5', 'x': 'x'}
    >>> cells["c060114a5"]["reasons"]
    ["same cell id 'c060114a5' (a/C060114A5: file name; b/C060114A5: file name)"]
    """
    ids = [fp.neuron_id for fp in fps]
    if len(set(ids)) != len(ids):
        raise ValueError("neuron ids must be unique")
    uf = _UnionFind(len(fps))
    named = defaultdict(list)  # cell id -> [(file index, where)]
    for i, fp in enumerate(fps):
        for key, where in fp.names:
            named[key].append((i, where))
    for members in named.values():
        for i, _ in members[1:]:
            uf.union(members[0][0], i)
    pairs = _content_pairs(fps)
    for a, b, _ in pairs:
        uf.union(a, b)
    groups = defaultdict(list)
    for i in range(len(fps)):
        groups[uf.find(i)].append(i)
    cell_of, cells, taken = {}, {}, set()
    for root in sorted(groups, key=lambda r: sorted(ids[i] for i in groups[r])[0]):
        members = sorted(groups[root], key=lambda i: ids[i])
        counts, from_header, first = defaultdict(set), defaultdict(bool), {}
        for i in members:
            for key, where in fps[i].names:
                counts[key].add(i)
                from_header[key] |= where == "header"
                first.setdefault(key, len(first))
        ranked = sorted(counts, key=lambda k: (-len(counts[k]), from_header[k], first[k]))
        name = next((k for k in ranked if k not in taken), None) or ids[members[0]]
        base, k = name, 1
        while name in taken:  # a neuron id that spells another cell's id
            k += 1
            name = f"{base}~{k}"
        taken.add(name)
        reasons = []
        if len(members) > 1:
            for key in sorted(counts, key=lambda k: (-len(counts[k]), k)):
                where = [(ids[i], w) for i, w in named[key] if i in counts[key]]
                if len(where) > 1:
                    reasons.append(f"same cell id {key!r} (" + "; ".join(f"{n}: {w}" for n, w in sorted(where)) + ")")
            member_set = set(members)
            reasons += [f"{why}: {ids[a]}, {ids[b]}" for a, b, why in pairs if a in member_set]
        cells[name] = {"files": [ids[i] for i in members], "reasons": reasons}
        for i in members:
            cell_of[ids[i]] = name
    return cell_of, cells


def main(argv=None) -> int:
    """``python -m mogen.data.cells INPUT...``: print the cells that `mogen prepare` would form."""
    import argparse
    import sys
    import warnings

    from tqdm import tqdm

    from mogen.errors import DataError
    from .neuron import collect_inputs, load_file

    parser = argparse.ArgumentParser(prog="python -m mogen.data.cells", description=main.__doc__)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders, as for `mogen prepare`")
    args = parser.parse_args(argv)
    fps = []
    for path, nid in tqdm(collect_inputs(args.inputs), desc="read", unit="file", file=sys.stderr):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fps.append(fingerprint(load_file(path, nid)))
        except DataError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
    _, cells = group_cells(fps)
    shared = {c: v for c, v in cells.items() if len(v["files"]) > 1}
    print(f"{len(fps)} files -> {len(cells)} cells; {len(shared)} of them have several files")
    for c, v in shared.items():
        print(f"\n{c}: {', '.join(v['files'])}")
        for reason in v["reasons"]:
            print(f"  - {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
