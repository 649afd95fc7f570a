"""SWC reader: quirks it must accept, bad input it must refuse clearly, real files, fuzzing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mogen.data import DataError, MeshError, SWCError
from mogen.data.neuron import load_file, swc_node_types
from mogen.data.swc import parse_swc, read_swc

DATA = Path(__file__).parent / "data"


def test_quirky_file_reads():
    n = read_swc(DATA / "swc" / "quirky.swc")
    nodes = n.nodes.set_index("node_id")
    assert len(nodes) == 10
    assert sorted(nodes.index[nodes.parent_id < 0]) == [10, 100]  # two roots
    assert nodes.loc[14, "parent_id"] == 13  # parent defined after its child
    assert nodes.loc[15, "z"] == 15 and nodes.loc[16, "radius"] == 0.4  # extra column, commas
    assert str(n.units) == "1 micrometer"
    types = swc_node_types(n.nodes.label.to_numpy())
    assert dict(zip(n.nodes.node_id, types))[100] == 0  # custom type 7 -> unknown
    assert dict(zip(n.nodes.node_id, types))[13] == 3


def test_units_scale_coordinates_and_radii():
    um = read_swc(DATA / "swc" / "quirky.swc").nodes
    nm = read_swc(DATA / "swc" / "quirky.swc", units="nm").nodes
    np.testing.assert_allclose(nm[["x", "y", "z", "radius"]].to_numpy() * 1000, um[["x", "y", "z", "radius"]].to_numpy())


@pytest.mark.parametrize(
    "name, where, words",
    [
        ("bad_nonnumeric.swc", "line 3", "non-numeric x 'abc'"),
        ("bad_missing_parent.swc", "line 3", "parent id 7 of node 3 does not exist"),
        ("bad_cycle.swc", "line", "cycle"),
        ("bad_nan.swc", "line 2", "y is nan"),
        ("bad_inf.swc", "line 2", "z is inf"),
        ("bad_negative_radius.swc", "line 2", "negative radius"),
        ("bad_empty.swc", "", "no nodes"),
    ],
)
def test_bad_swc_names_file_line_problem(name, where, words):
    with pytest.raises(SWCError) as err:
        read_swc(DATA / "swc" / name)
    msg = str(err.value)
    assert name in msg and where in msg and words in msg, msg


def test_cycle_message_lists_the_loop():
    with pytest.raises(SWCError, match=r"cycle in parent links: .*2.*4.*3|cycle in parent links: .*3.*2.*4|cycle in parent links: .*4.*3.*2"):
        read_swc(DATA / "swc" / "bad_cycle.swc")


@pytest.mark.parametrize("encoding, bom", [("utf-16", ""), ("utf-16-le", ""), ("utf-16-be", ""), ("utf-32", ""),
                                           ("utf-8", "\ufeff"), ("latin-1", "")])
def test_text_encodings_read_alike(tmp_path, encoding, bom):
    text = (DATA / "swc" / "quirky.swc").read_text() + "# Zellkörper in µm\n"
    p = tmp_path / "cell.swc"
    p.write_bytes((bom + text).encode(encoding))  # utf-16/32: with byte-order mark; -le/-be: without
    ref = read_swc(DATA / "swc" / "quirky.swc").nodes
    got = read_swc(p)
    assert got.nodes.equals(ref)
    assert got.swc_header[-1] == "# Zellkörper in µm" and got.swc_header[0].startswith("# quirky but valid")


def test_binary_and_broken_text_named_as_such(tmp_path):
    p = tmp_path / "cell.swc"
    p.write_bytes(b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00")
    with pytest.raises(SWCError, match=r"cell.swc: byte 8: binary data \(a zero byte\), not SWC text; an HDF5 file"):
        read_swc(p)
    p.write_bytes(b"\xff\xfe" + "1 1 0 0 0 1 -1\n".encode("utf-16-le") + b"\x00\xd8")  # lone surrogate
    with pytest.raises(SWCError, match=r"cell.swc: byte \d+: broken UTF-16 text"):
        read_swc(p)
    p.write_text("1 1 0 0 0 1 -1\n2 3 1 0 0 1 1 \u00b5\n3 3 x\u00b5 0 0 1 2\n")
    with pytest.raises(SWCError, match="line 3: non-numeric x 'x\u00b5'"):  # the text as written, no mojibake
        read_swc(p)


def test_duplicate_id_and_short_line():
    with pytest.raises(SWCError, match="line 2: duplicate node id 1"):
        parse_swc("1 1 0 0 0 1 -1\n1 3 1 0 0 1 -1\n", "dup.swc")
    with pytest.raises(SWCError, match="line 1: expected 7 fields"):
        parse_swc("1 1 0 0 0 1\n", "short.swc")


@pytest.mark.parametrize("name, words", [("empty.obj", "point cloud without faces (2 points)"), ("degenerate.obj", "degenerate mesh")])
def test_bad_mesh_names_file_and_problem(name, words):
    with pytest.raises(MeshError) as err:
        load_file(DATA / "mesh" / name)
    assert name in str(err.value) and words in str(err.value)


def test_nonfinite_mesh_vertex(tmp_path):
    p = tmp_path / "nan.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 nan 0\nf 1 2 3\n")
    with pytest.raises(MeshError, match=r"nan.obj: vertex 2: non-finite"):
        load_file(p)


def test_unsupported_suffix(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("hello")
    with pytest.raises(DataError, match="unsupported file type"):
        load_file(p)


REAL = [
    "snudda/AA0059.swc",  # tabs, parents after children
    "neuron-morphology/Ctgf-2A-dgCre;Ai14-495723.05.02.01_651989845_m_pia.swc",  # root id 0
    "dbbs-models/GolgiCell.swc",  # trailing whitespace, custom types
    "swc-visualizer/dopaminergic.swc",  # blank lines, no soma
    "morphology-workflows/C270106A.swc",  # soma contour with radius 0
    "axon-synthesis",  # CRLF; a folder: take its first file
    "pywarper/Image013-009_01_raw_latest_Uygar.swc",  # type 0 only, radius <= 0
]


@pytest.mark.parametrize("rel", REAL)
def test_real_files_read(shared_data, rel):
    p = shared_data / "skeletons" / rel
    if p.is_dir():
        p = sorted(p.glob("*.swc"))[0]
    if not p.exists():
        cands = sorted((shared_data / "skeletons" / Path(rel).parent).glob(Path(rel).name.split(";")[0] + "*"))
        p = cands[0]
    n = read_swc(p)
    assert n.n_nodes > 100
    assert np.isfinite(n.nodes[["x", "y", "z", "radius"]].to_numpy()).all()


_token = st.one_of(
    st.integers(-3, 12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["-1", "nan", "inf", "1e400", "abc", "", "#", "1.5", "0x1", "--1", "\u00b5"]),
)
_line = st.lists(_token, min_size=0, max_size=9).map(lambda t: " ".join(t))
_text = st.lists(_line, max_size=12).map("\n".join) | st.text(max_size=200)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_text)
def test_fuzz_reader_raises_only_swc_error(text):
    try:
        df = parse_swc(text, "fuzz.swc")
    except SWCError:
        return
    assert len(df) > 0
    assert np.isfinite(df[["x", "y", "z", "radius"]].to_numpy()).all()
    assert (df.radius >= 0).all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400) | _text.map(lambda t: t.encode("utf-8")) | _text.map(lambda t: t.encode("utf-16")))
def test_fuzz_file_bytes_raise_only_swc_error(tmp_path, data):
    p = tmp_path / "fuzz.swc"
    p.write_bytes(data)
    try:
        n = read_swc(p)
    except SWCError as exc:
        assert str(exc).startswith(f"{p}: ")
        return
    assert n.n_nodes > 0 and np.isfinite(n.nodes[["x", "y", "z", "radius"]].to_numpy()).all()


def test_morphio_formats_match_swc(shared_data, tmp_path):
    morphio = pytest.importorskip("morphio", reason="optional extra mogen[morphio] not installed")
    src = shared_data / "skeletons" / "morphology-workflows" / "C270106A.swc"
    morphio.mut.Morphology(str(src)).write(str(tmp_path / "cell.h5"))
    ref = read_swc(src)
    n = load_file(tmp_path / "cell.h5")
    assert n.skeleton.cable_length == pytest.approx(ref.cable_length, rel=1e-6)
    assert (n.node_types == 1).sum() == (swc_node_types(ref.nodes.label.to_numpy()) == 1).sum()


@st.composite
def _small_tree_swc(draw):
    """A valid small tree in shuffled order, sometimes with one field corrupted."""
    n = draw(st.integers(1, 10))
    first = draw(st.integers(-2, 3))
    ids = draw(st.permutations(list(range(first, first + 30))))[:n]
    rows = []
    for i in range(n):
        root = i == 0 or draw(st.integers(0, 3)) == 0
        par = -1 if root else ids[draw(st.integers(0, i - 1))]
        xyz = [repr(draw(st.floats(-30, 30))) for _ in range(3)]
        r = repr(draw(st.one_of(st.just(0.0), st.floats(0, 3))))
        rows.append([str(ids[i]), str(draw(st.integers(-1, 9))), *xyz, r, str(par)])
    if draw(st.booleans()):
        rows[draw(st.integers(0, n - 1))][draw(st.integers(0, 6))] = draw(
            st.sampled_from(["nan", "-1", "x", "1e400", "0", "3.5", "-2", str(ids[0])]))
    return "\n".join(" ".join(rows[k]) for k in draw(st.permutations(range(n))))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_small_tree_swc(), st.floats(0.5, 5))
def test_fuzz_file_to_fragments_raises_only_data_error(tmp_path, text, radius):
    import warnings

    from mogen.data.fragments import make_fragments

    p = tmp_path / "f.swc"
    p.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fr = make_fragments(load_file(p), radius=radius, points=16, spacing=1)
        except DataError:
            return
    assert np.isfinite(fr.points).all() and (np.linalg.norm(fr.points, axis=-1) <= 1 + 1e-5).all()
