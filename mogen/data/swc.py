"""SWC files: a strict-but-tolerant reader and the one writer (:func:`write_swc`, trees only).

Tolerates what real files do: ``#`` headers, blank lines, leading/trailing whitespace, tabs
or commas as delimiters, CRLF line endings, extra columns, node ids that do not start at 1 or
are not sorted (a parent may come after its child), several roots, multi-point (contour)
somata and custom type codes. Refuses, with :class:`SWCError` naming file, line and problem:
non-numeric fields, non-integer ids, NaN/inf coordinates or radii, negative radii, duplicate
ids, parents that do not exist, cycles, files without nodes, and binary files. Text may be
UTF-8 (with or without a byte-order mark), UTF-16 or UTF-32 with a byte-order mark, UTF-16
without one (recognised by its zero bytes), or Latin-1 (bytes that are not UTF-8).

The result is a :class:`navis.TreeNeuron` whose ``nodes`` hold ``node_id, parent_id, x, y, z,
radius, label`` (``label`` = SWC type code), scaled to µm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, depth_first_order

from mogen.errors import SWCError
from .units import DEFAULT_SWC_UNITS, to_um

_COLUMNS = ("id", "type", "x", "y", "z", "radius", "parent")
MAX_HEADER_LINES = 100


def decode_swc(data: bytes, file="<swc>") -> str:
    """SWC bytes as text: UTF-8, UTF-16/32 (with a byte-order mark, or UTF-16 recognised by
    its zero bytes) or Latin-1; binary data is refused with :class:`SWCError`.

    Examples
    --------
    >>> decode_swc("1 1 0 0 0 1 -1\\n".encode("utf-16"))
    '1 1 0 0 0 1 -1\\n'
    >>> decode_swc(b"\\x89HDF\\r\\n\\x1a\\n\\x00\\x00", "cell.swc")
    Traceback (most recent call last):
    mogen.errors.SWCError: cell.swc: byte 8: binary data (a zero byte), not SWC text; an HDF5 file (.h5) renamed .swc?
    """
    import codecs

    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise SWCError(file, f"byte {exc.start}", f"broken {codec.upper()} text ({exc.reason})") from None
    zero = data.find(b"\0")
    if zero >= 0:
        head = data[:4096]
        even, odd = head[0::2], head[1::2]
        for codec, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
            # UTF-16 of ASCII text: every second byte is zero, the others are not
            if len(zeros) >= 4 and zeros.count(0) >= 0.9 * len(zeros) and other.count(0) <= 0.1 * len(other):
                try:
                    return data.decode(codec)
                except UnicodeDecodeError as exc:
                    raise SWCError(file, f"byte {exc.start}", f"broken UTF-16 text without byte-order mark ({exc.reason})") from None
        hint = "; an HDF5 file (.h5) renamed .swc?" if data.startswith(b"\x89HDF") else ""
        raise SWCError(file, f"byte {zero}", f"binary data (a zero byte), not SWC text{hint}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # SWC data is ASCII; only comments can be in another code page


def parse_swc(text: str, file="<swc>") -> pd.DataFrame:
    """Parse SWC text into a validated node table.

    Returns a DataFrame with ``node_id, label, x, y, z, radius, parent_id`` and a ``line``
    column (1-based line number in the file), in file order; ``df.attrs["header"]`` keeps
    the first comment lines (they may name the cell, see :mod:`mogen.data.cells`).

    Examples
    --------
    >>> df = parse_swc("# a header\\n1 1 0 0 0 2 -1\\n2\\t3 5 0 0 1 1\\n")
    >>> df[["node_id", "parent_id"]].values.tolist()
    [[1, -1], [2, 1]]
    """
    lines, rows, header = [], [], []
    for lineno, raw in enumerate(text.replace(",", " ").splitlines(), 1):
        toks = raw.split()
        if not toks:
            continue
        if toks[0].startswith(("#", "\ufeff#")):
            if len(header) < MAX_HEADER_LINES:
                header.append(raw.strip().lstrip("\ufeff"))
            continue
        if toks[0].startswith("\ufeff"):
            toks[0] = toks[0][1:]
        if len(toks) < 7:
            raise SWCError(file, f"line {lineno}", f"expected 7 fields (id type x y z radius parent), found {len(toks)}: {raw.strip()[:60]!r}")
        lines.append(lineno)
        rows.append(toks[:7])
    if not rows:
        raise SWCError(file, "", "no nodes (file has no data lines)")
    lines_a = np.asarray(lines)
    try:  # fast path: numpy converts every field at once
        a = np.array(rows, dtype=np.float64)
    except (ValueError, OverflowError):  # find the first bad field, to name it
        a = np.array([_parse_row(r, file, n) for r, n in zip(rows, lines)], dtype=np.float64)
    for col, name in ((0, "node id"), (1, "type"), (6, "parent id")):
        bad = np.nonzero(~np.isfinite(a[:, col]) | (a[:, col] != np.round(a[:, col])) | (np.abs(a[:, col]) > 2**62))[0]
        if len(bad):
            i = bad[0]
            raise SWCError(file, f"line {lines[i]}", f"{name} must be an integer, got {rows[i][col]!r}")
    for col, name in ((2, "x"), (3, "y"), (4, "z"), (5, "radius")):
        bad = np.nonzero(~np.isfinite(a[:, col]))[0]
        if len(bad):
            i = bad[0]
            raise SWCError(file, f"line {lines[i]}", f"{name} is {rows[i][col]} (must be a finite number)")
    neg = np.nonzero(a[:, 5] < 0)[0]
    if len(neg):
        raise SWCError(file, f"line {lines[neg[0]]}", f"negative radius {rows[neg[0]][5]}")
    ids_a = a[:, 0].astype(np.int64)
    par_a = a[:, 6].astype(np.int64)
    _check_topology(ids_a, par_a, lines_a, file)
    df = pd.DataFrame(
        {
            "node_id": ids_a,
            "label": a[:, 1].astype(np.int64),
            "x": a[:, 2],
            "y": a[:, 3],
            "z": a[:, 4],
            "radius": a[:, 5],
            "parent_id": par_a,
            "line": lines_a,
        }
    )
    df.attrs["header"] = header
    return df


def _parse_row(toks: list[str], file, lineno: int) -> list[float]:
    """Convert one row, raising on the first non-numeric field."""
    out = []
    for name, tok in zip(_COLUMNS, toks):
        try:
            out.append(float(tok))
        except ValueError:
            label = {"id": "node id", "parent": "parent id"}.get(name, name)
            raise SWCError(file, f"line {lineno}", f"non-numeric {label} {tok!r}") from None
    return out


def _check_topology(ids: np.ndarray, parents: np.ndarray, lines: np.ndarray, file) -> None:
    """Duplicate ids, missing parents and cycles, each reported with its line."""
    order = np.argsort(ids, kind="stable")
    sids = ids[order]
    dup = np.nonzero(sids[1:] == sids[:-1])[0]
    if len(dup):
        i = order[dup[0] + 1]
        first = order[dup[0]]
        raise SWCError(file, f"line {lines[i]}", f"duplicate node id {ids[i]} (first defined on line {lines[first]})")
    is_root = parents < 0
    pos = np.searchsorted(sids, parents)
    pos_c = np.minimum(pos, len(sids) - 1)
    found = sids[pos_c] == parents
    missing = np.nonzero(~is_root & ~found)[0]
    if len(missing):
        i = missing[0]
        raise SWCError(file, f"line {lines[i]}", f"parent id {parents[i]} of node {ids[i]} does not exist")
    self_loop = np.nonzero(parents == ids)[0]
    if len(self_loop):
        i = self_loop[0]
        raise SWCError(file, f"line {lines[i]}", f"node {ids[i]} is its own parent (cycle)")
    # Every node must be reachable from a root; the rest sit on cycles.
    n = len(ids)
    pidx = order[pos_c]
    child = np.nonzero(~is_root)[0]
    src = np.concatenate([pidx[child], np.full(is_root.sum(), n)])
    dst = np.concatenate([child, np.nonzero(is_root)[0]])
    g = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n + 1, n + 1)).tocsr()
    reached = np.zeros(n + 1, bool)
    reached[breadth_first_order(g, n, directed=True, return_predecessors=False)] = True
    lost = np.nonzero(~reached[:n])[0]
    if len(lost):
        # Walk parents from the first unreachable node until a node repeats: that is the cycle.
        i, seen, path = lost[0], {}, []
        while i not in seen:
            seen[i] = len(path)
            path.append(i)
            i = pidx[i]
        cyc = path[seen[i]:]
        ids_txt = " -> ".join(str(ids[j]) for j in cyc[:8]) + (" ..." if len(cyc) > 8 else "")
        raise SWCError(file, f"line {lines[cyc[0]]}", f"cycle in parent links: {ids_txt} -> {ids[cyc[0]]}")


def read_swc(path, units=None, name: str | None = None):
    """Read an SWC file as a navis TreeNeuron in µm.

    Parameters
    ----------
    path : str or Path
        The SWC file.
    units : str, optional
        Units of the file's coordinates and radii (default µm, the SWC convention).
    name : str, optional
        Neuron id; default the file stem.

    Examples
    --------
    >>> import tempfile, os
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".swc", delete=False)
    >>> _ = f.write("1 1 0 0 0 1000 -1\\n2 3 5000 0 0 500 1\\n"); f.close()
    >>> n = read_swc(f.name, units="nm"); os.unlink(f.name)
    >>> float(n.nodes.x.max()), str(n.units)
    (5.0, '1 micrometer')
    """
    import navis

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SWCError(path, "", f"cannot read file ({exc.strerror or exc})") from None
    df = parse_swc(decode_swc(data, path), file=path)
    scale = to_um(units if units is not None else DEFAULT_SWC_UNITS)
    if scale != 1.0:
        df[["x", "y", "z", "radius"]] *= scale
    lines = df.pop("line").to_numpy()
    tn = navis.TreeNeuron(df, units="1 micrometer", name=name or path.stem, id=name or path.stem)
    tn.swc_lines = lines  # row-aligned with the input order, for error messages
    tn.swc_header = list(df.attrs.get("header", []))
    tn.file = str(path)
    return tn


# ----------------------------------------------------------------------------- writing

# neurite type code (mogen.data.conditions.NEURITE_TYPES) -> SWC type: unknown is written as
# dendrite (3), since simulators give type 0 no section list
NEURITE_TO_SWC = {0: 3, 1: 1, 2: 2, 3: 3}


def tree_order(parents: np.ndarray, file="<swc>") -> np.ndarray:
    """Node indices with every parent before its children, depth first from each root.

    Depth first keeps each unbranched stretch contiguous, which is how NEURON's SWC importer
    finds sections (a node whose parent is not the line before starts a new one).

    ``parents[i]`` is the index of node i's parent, -1 at a root. Raises :class:`SWCError`
    for parents out of range, self-parents and cycles: every node must reach a root.
    """
    parents = np.asarray(parents)
    n = len(parents)
    if parents.ndim != 1 or not np.issubdtype(parents.dtype, np.integer):
        raise SWCError(file, "parents", f"must be a 1-D integer array, got {parents.dtype} {parents.shape}")
    bad = np.flatnonzero((parents < -1) | (parents >= n))
    if len(bad):
        raise SWCError(file, f"node {bad[0]}", f"parent index {parents[bad[0]]} is outside [-1, {n})")
    own = np.flatnonzero(parents == np.arange(n))
    if len(own):
        raise SWCError(file, f"node {own[0]}", "is its own parent (cycle)")
    roots = np.flatnonzero(parents < 0)
    child = np.flatnonzero(parents >= 0)
    g = coo_matrix((np.ones(len(child) + len(roots)), (np.concatenate([parents[child], np.full(len(roots), n)]),
                                                       np.concatenate([child, roots]))), shape=(n + 1, n + 1)).tocsr()
    order = depth_first_order(g, n, directed=True, return_predecessors=False)[1:]
    if len(order) != n:
        lost = np.setdiff1d(np.arange(n), order)
        raise SWCError(file, f"node {lost[0]}", f"{len(lost)} nodes do not reach a root (their parent links form a cycle)")
    return order


def write_swc(path, nodes_um: np.ndarray, parents: np.ndarray, radii_um: np.ndarray, types: np.ndarray | int = 3,
              max_roots: int | None = 1, header: str = "") -> Path:
    """Write a tree (µm) as an SWC file; the one SWC writer.

    Parameters
    ----------
    nodes_um : [M, 3] coordinates; radii_um : [M] radii (finite, > 0).
    parents : [M] parent index per node, -1 at a root.
    types : SWC type code per node (or one for all): 1 soma, 2 axon, 3 dendrite, 4 apical.
    max_roots : refuse more connected pieces (roots) than this (default 1: one tree, as
        simulators need); ``None`` allows a forest. Join pieces first
        (:func:`mogen.skeleton.skeletonize` always yields one tree).
    header : comment lines written after mogen's own (without ``#``).

    Refuses, with :class:`SWCError`, anything that is not a forest of rooted trees: parent
    indices out of range, cycles, more roots than ``max_roots``, non-finite coordinates,
    non-positive radii. Nodes are written with ids 1..M, parents before children, so the
    file reads back (:func:`read_swc`) to the same tree.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "y.swc")
    >>> nodes = np.array([[0.0, 0, 0], [5, 0, 0], [8, 3, 0], [8, -3, 0]])
    >>> _ = write_swc(path, nodes, np.array([-1, 0, 1, 1]), np.full(4, 0.5))
    >>> read_swc(path).nodes[["node_id", "parent_id"]].values.tolist()
    [[1, -1], [2, 1], [3, 2], [4, 2]]
    >>> write_swc(path, nodes, np.array([-1, 0, 1, -1]), np.full(4, 0.5))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mogen.errors.SWCError: ...y.swc: roots: 2 roots (connected pieces); at most 1 allowed: join the pieces into one tree first
    >>> write_swc(path, nodes, np.array([-1, 2, 1, 1]), np.full(4, 0.5))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mogen.errors.SWCError: ...y.swc: node 1: 3 nodes do not reach a root (their parent links form a cycle)
    """
    from mogen import __version__

    path = Path(path)
    nodes = np.asarray(nodes_um, dtype=np.float64)
    radii = np.asarray(radii_um, dtype=np.float64)
    parents = np.asarray(parents)
    m = len(nodes)
    if m == 0 or nodes.shape != (m, 3) or radii.shape != (m,) or parents.shape != (m,):
        raise SWCError(path, "arrays", f"need nodes [M>0, 3], parents [M] and radii [M]; got {nodes.shape}, "
                                       f"{parents.shape}, {radii.shape}")
    types = np.broadcast_to(np.asarray(types, dtype=np.int64), (m,))
    bad = np.flatnonzero(~np.isfinite(nodes).all(1))
    if len(bad):
        raise SWCError(path, f"node {bad[0]}", f"non-finite coordinate {nodes[bad[0]].tolist()}")
    bad = np.flatnonzero(~(np.isfinite(radii) & (radii > 0)))
    if len(bad):
        raise SWCError(path, f"node {bad[0]}", f"radius {radii[bad[0]]} (must be a finite number > 0)")
    order = tree_order(parents, path)
    n_roots = int((parents < 0).sum())
    if max_roots is not None and n_roots > max_roots:
        raise SWCError(path, "roots", f"{n_roots} roots (connected pieces); at most {max_roots} allowed: join the "
                                      "pieces into one tree first")
    new_id = np.empty(m, np.int64)
    new_id[order] = np.arange(1, m + 1)
    par = parents[order]
    par_id = np.where(par < 0, -1, new_id[np.maximum(par, 0)])
    lines = [f"# written by mogen {__version__}: {m} nodes, {n_roots} root{'s' if n_roots != 1 else ''}, µm",
             *(f"# {h}" for h in header.splitlines() if h.strip()),
             "# id type x y z radius parent"]
    x, r, t = nodes[order], radii[order], types[order]
    lines += [f"{i} {ty} {a:.4f} {b:.4f} {c:.4f} {rad:.4f} {p}" for i, ty, (a, b, c), rad, p in
              zip(range(1, m + 1), t, x, r, par_id)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
