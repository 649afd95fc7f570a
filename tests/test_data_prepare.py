"""`mogen prepare` end to end: dataset layout per the contract, loader, bad-input handling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mogen.cli import main
from mogen.data import FragmentDataset, make_loader, manifest_hash, read_manifest
from mogen.data.conditions import COND_DIM

DATA = Path(__file__).parent / "data"
POINTS = 256


@pytest.fixture(scope="session")
def navis_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("navis") / "ds"
    assert main(["prepare", "--out", str(out), "--points", str(POINTS), "--max-fragments-per-neuron", "6"]) == 0
    return out


def test_manifest_contract(navis_dataset):
    m = json.loads((navis_dataset / "manifest.json").read_text())
    for key in ("format", "mogen_version", "radius_um", "points_per_fragment", "units", "seed", "splits",
                "neurons", "failed", "created"):
        assert key in m
    assert m["format"] == "mogen-fragments/1" and m["units"] == "um" and m["radius_um"] == 10.0
    assert m["points_per_fragment"] == POINTS and m["failed"] == []
    assert (navis_dataset / "preview.png").stat().st_size > 10_000
    # 5 different cells: the default split gives every held-out split at least one
    assert [len(m["splits"][s]["neurons"]) for s in ("train", "val", "test")] == [3, 1, 1]
    assert [len(m["splits"][s]["cells"]) for s in ("train", "val", "test")] == [3, 1, 1]
    for n in m["neurons"]:
        assert {"id", "source", "kind", "split", "cell", "fragments", "cable_um"} <= set(n)
        assert n["kind"] == "mesh" and n["units"] == "8 nanometer" and 1500 < n["cable_um"] < 3000
        assert m["cells"][n["cell"]]["files"] == [n["id"]] and n["cell"] in m["splits"][n["split"]]["cells"]
    seen = [i for s in m["splits"].values() for i in s["neurons"]]
    assert len(seen) == len(set(seen)) == 5  # no neuron in two splits
    assert read_manifest(navis_dataset)["cells"] == m["cells"]  # the owner module accepts the cell groups
    assert not list(navis_dataset.parent.glob(".*prepare-partial*"))  # the working folder is gone


def test_split_files(navis_dataset):
    m = json.loads((navis_dataset / "manifest.json").read_text())
    for split in ("train", "val", "test"):
        pts = np.load(navis_dataset / split / "points.npy", mmap_mode="r")
        meta = np.load(navis_dataset / split / "fragments.npz")
        f = m["splits"][split]["fragments"]
        assert pts.shape == (f, POINTS, 3) and pts.dtype == np.float32
        assert meta["anchor_um"].shape == (f, 3) and meta["anchor_um"].dtype == np.float32
        assert meta["neuron_id"].shape == (f,) and meta["neurite_type"].dtype == np.int8
        assert meta["cable_ends"].dtype == np.int32 and meta["caliber"].dtype == np.float32
        assert set(meta["neuron_id"].tolist()) <= set(m["splits"][split]["neurons"])
        if f:
            assert (np.linalg.norm(pts, axis=-1) <= 1 + 1e-6).all()
            assert meta["cable_ends"].min() >= 1 and (meta["caliber"] > 0).all()
    assert m["splits"]["val"]["fragments"] == 6


def test_loader_batches_and_rotation(navis_dataset):
    ds = FragmentDataset(navis_dataset, "train")
    item = ds[0]
    assert item["points"].shape == (POINTS, 3) and item["cond"].shape == (COND_DIM,)
    assert item["neurite_type"].dtype == torch.long and item["neurite_type"].shape == ()
    assert isinstance(item["index"], int)
    rot = FragmentDataset(navis_dataset, "train", rotate=True, seed=0)[0]
    # a rotation keeps distances to the centre, changes coordinates and the centroid part of cond
    assert torch.allclose(rot["points"].norm(dim=1), item["points"].norm(dim=1), atol=1e-5)
    assert not torch.allclose(rot["points"], item["points"])
    assert not torch.allclose(rot["cond"][4:7], item["cond"][4:7])
    assert torch.equal(rot["cond"][:4], item["cond"][:4])
    loader = make_loader(navis_dataset, "train", batch_size=8, rotate=True, jitter=0.01, seed=0)
    b1 = next(iter(loader))
    assert b1["points"].shape == (8, POINTS, 3) and b1["cond"].shape == (8, COND_DIM)
    b2 = next(iter(make_loader(navis_dataset, "train", batch_size=8, rotate=True, jitter=0.01, seed=0)))
    assert torch.equal(b1["points"], b2["points"])  # reproducible under the seed
    assert len(loader) == len(ds) // 8


def test_manifest_hash(navis_dataset, tmp_path):
    h = manifest_hash(navis_dataset)
    assert len(h) == 64
    copy = tmp_path / "copy"
    shutil.copytree(navis_dataset, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["created"] = "another time"
    (copy / "manifest.json").write_text(json.dumps(m))
    assert manifest_hash(copy) == h  # only splits / radius / points count
    m["radius_um"] = 5.0
    (copy / "manifest.json").write_text(json.dumps(m))
    assert manifest_hash(copy) != h


def test_refuses_non_empty_out(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    args = ["prepare", str(DATA / "swc" / "quirky.swc"), "--out", str(out), "--points", "64", "--radius-um", "5",
            "--no-preview"]
    assert main(args) == 2
    assert "not empty; use --force" in capsys.readouterr().err
    assert main(args + ["--force", "--test", "0"]) == 0
    assert (out / "keep.txt").exists() and (out / "manifest.json").exists()
    # --force replaces only prepare's own outputs: a train/ that no manifest vouches for stays
    other = tmp_path / "other"
    (other / "train").mkdir(parents=True)
    (other / "train" / "image.png").write_text("not ours")
    assert main(args + ["--force", "--out", str(other)]) == 2
    assert "holds train, but not as a dataset of `mogen prepare` (no manifest.json)" in capsys.readouterr().err
    assert (other / "train" / "image.png").read_text() == "not ours"


def _bad_folder(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(DATA / "swc" / "quirky.swc", d / "good.swc")
    for name in ("bad_nonnumeric.swc", "bad_cycle.swc", "tiny.swc"):
        shutil.copy(DATA / "swc" / name, d / name)
    shutil.copy(DATA / "mesh" / "degenerate.obj", d / "degenerate.obj")
    return d


def test_on_error_skip_records_failures(tmp_path, capsys):
    d, out = _bad_folder(tmp_path), tmp_path / "out"
    assert main(["prepare", str(d), "--out", str(out), "--points", "64", "--radius-um", "5", "--on-error", "skip",
                 "--no-preview"]) == 0
    text = capsys.readouterr().out
    m = json.loads((out / "manifest.json").read_text())
    failed = {Path(f["file"]).name: f["error"] for f in m["failed"]}
    assert set(failed) == {"bad_nonnumeric.swc", "bad_cycle.swc", "tiny.swc", "degenerate.obj"}
    assert "line 3: non-numeric x 'abc'" in failed["bad_nonnumeric.swc"]
    assert "smaller than one crop" in failed["tiny.swc"]
    assert "degenerate mesh" in failed["degenerate.obj"]
    assert {f["error_type"] for f in m["failed"]} == {"SWCError", "DataError", "MeshError"}
    assert [n["id"] for n in m["neurons"]] == ["good"]
    assert "5 inputs, 1 ok, 4 failed" in text and "bad_cycle.swc" in text  # the summary table
    for name, error in failed.items():  # each failure with its reason, in the summary too
        assert error.split(": ", 1)[1] in text


def test_on_error_raise_stops_with_a_clear_message(tmp_path, capsys):
    d, out = _bad_folder(tmp_path), tmp_path / "out"
    assert main(["prepare", str(d), "--out", str(out), "--points", "64", "--radius-um", "5"]) == 1
    err = capsys.readouterr().err
    assert "bad_cycle.swc: line" in err and "cycle" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))  # nothing written, nothing left over


def test_type_map_and_bad_arguments(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["prepare", str(DATA / "swc" / "quirky.swc"), "--out", str(out), "--points", "32", "--radius-um", "5",
            "--test", "0", "--spacing-um", "2", "--no-preview"]
    assert main(args + ["--type-map", "7=axon"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    meta = np.load(out / "train" / "fragments.npz")
    far = meta["anchor_um"][:, 0] > 40  # the second tree: type-7 nodes around (50, 50, 50-80)
    assert far.any() and (meta["neurite_type"][far] == 2).all()
    assert m["neurons"][0]["warnings"] and "missing or zero radius" in m["neurons"][0]["warnings"][0]
    assert main(args + ["--force", "--type-map", "7=banana"]) == 2
    assert "bad type map entry" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")]) == 2
    assert "input not found" in capsys.readouterr().err


@pytest.mark.parametrize("bad, words", [
    (["--val", "0", "--test", "1.0"], "--val 0 and --test 1 must be fractions in [0, 1) that sum to less than 1"),
    (["--val", "0.6", "--test", "0.6"], "sum to less than 1"),
    (["--val", "nan"], "must be fractions"),
    (["--radius-um", "nan"], "--radius-um must be a finite number of µm in [0.01, 10000], got nan"),
    (["--radius-um", "-1"], "--radius-um must be"),
    (["--spacing-um", "1e-9"], "--spacing-um must be a finite number of µm in [0.001, 1e+07], got 1e-09"),
    (["--spacing-um", "inf"], "--spacing-um must be"),
    (["--points", "0"], "--points must be an integer in [1, 1e+06], got 0"),
    (["--points", "-5"], "--points must be"),
    (["--max-fragments-per-neuron", "-1"], "--max-fragments-per-neuron must be"),
    (["--min-area-frac", "inf"], "--min-area-frac must be"),
    (["--seed", "-1"], "--seed must be"),
    (["--workers", "0"], "--workers must be"),
    (["--units", "parsecs per fortnight"], "--units: cannot understand length unit"),
    (["--type-map", "x=axon"], "--type-map: bad type map entry"),
])
def test_bad_arguments_refused_before_any_input_is_read(tmp_path, capsys, monkeypatch, bad, words):
    import mogen.data.neuron as neuron

    monkeypatch.setattr(neuron, "load_file", lambda *a, **k: pytest.fail("an input was read"))
    out = tmp_path / "out"
    assert main(["prepare", str(DATA / "swc" / "bad_cycle.swc"), "--out", str(out), *bad]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_input_folders_and_files_checked(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no neurons here")
    out = str(tmp_path / "out")
    assert main(["prepare", str(empty), "--out", out]) == 2
    assert "holds no supported files (.swc .asc .h5 .obj" in capsys.readouterr().err
    assert main(["prepare", str(empty / "notes.txt"), "--out", out]) == 2
    assert "unsupported file type '.txt'" in capsys.readouterr().err
    (tmp_path / "blocker").write_text("a file")
    assert main(["prepare", str(DATA / "swc" / "quirky.swc"), "--out", str(tmp_path / "blocker")]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["is", "inside", "contains"])
def test_force_never_touches_inputs(tmp_path, capsys, where):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(DATA / "swc" / "quirky.swc", inputs / "cell.swc")
    for split in ("train", "val", "test"):  # user files named like prepare's outputs
        (inputs / split).mkdir()
        (inputs / split / "cell.swc").write_bytes((DATA / "swc" / "quirky.swc").read_bytes())
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out, src = {"is": (inputs, inputs), "inside": (inputs / "ds", inputs), "contains": (tmp_path, inputs / "cell.swc")}[where]
    assert main(["prepare", str(src), "--out", str(out), "--force"]) == 2
    assert "prepare never writes where it reads" in capsys.readouterr().err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def _snapshot(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_failed_or_interrupted_prepare_keeps_the_old_dataset(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ds"
    # one process: the interrupt below is planted by patching this process's make_fragments
    args = ["--out", str(out), "--points", "32", "--radius-um", "5", "--no-preview", "--test", "0", "--workers", "1"]
    assert main(["prepare", str(DATA / "swc" / "quirky.swc"), *args]) == 0
    old = _snapshot(out)
    d = _bad_folder(tmp_path)
    # a bad file stops the run: the dataset that was there stays as it was
    assert main(["prepare", str(d), *args, "--force"]) == 1
    assert "is unchanged" in capsys.readouterr().err
    assert _snapshot(out) == old and not list(tmp_path.glob(".*partial*"))
    # so does an interrupt in the middle of the work (Ctrl-C, or SIGTERM turned into one)
    import mogen.data.prepare as prepare

    real = prepare.make_fragments
    calls = []

    def interrupt(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(prepare, "make_fragments", interrupt)
    two = tmp_path / "two"
    two.mkdir()
    shutil.copy(DATA / "swc" / "quirky.swc", two / "a.swc")
    shutil.copy(DATA / "swc" / "quirky.swc", two / "b.swc")
    assert main(["prepare", str(two), *args, "--force"]) == 130
    assert _snapshot(out) == old and not list(tmp_path.glob(".*partial*"))
    monkeypatch.undo()
    # and a good run with --force replaces it completely: no stale preview, no stray .chunks
    (out / "preview.png").write_bytes(b"a preview of the old dataset")
    assert main(["prepare", str(two), *args, "--force"]) == 0
    m = read_manifest(out)
    assert sorted(n["id"] for n in m["neurons"]) == ["a", "b"]
    assert sorted(_snapshot(out)) == ["manifest.json", *(f"{s}/{f}" for s in ("test", "train", "val")
                                                          for f in ("fragments.npz", "points.npy"))]


def _offset_swc(path: Path, offset=0.0, scale=1.0) -> Path:
    rows = [f"{i + 1} 3 {offset + scale * 4 * i} {offset} {offset} {scale} {i if i else -1}" for i in range(30)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_absurd_geometry_is_refused_per_file_with_the_number(tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    _offset_swc(d / "good.swc")
    _offset_swc(d / "offset.swc", offset=1e12)
    _offset_swc(d / "scaled.swc", scale=1e11)
    out = tmp_path / "out"
    assert main(["prepare", str(d), "--out", str(out), "--points", "32", "--no-preview", "--test", "0",
                 "--on-error", "skip"]) == 0
    failed = {Path(f["file"]).name: f["error"] for f in read_manifest(out)["failed"]}
    assert "offset.swc: coordinates: x reaches 1e+12 µm" in failed["offset.swc"]
    assert "scaled.swc: coordinates: x reaches 1.16e+13 µm" in failed["scaled.swc"]
    # a spacing allowed in general, but far too fine for this much cable
    _offset_swc(d / "long.swc", scale=100)
    assert main(["prepare", str(d / "long.swc"), "--out", str(tmp_path / "o2"), "--spacing-um", "0.001"]) == 1
    err = capsys.readouterr().err
    assert "long.swc: neuron: 1.16e+04 µm of cable / spacing 0.001 µm = 1.16e+07 anchors, more than 1e+07" in err
    assert main(["prepare", str(d / "long.swc"), "--out", str(tmp_path / "o3"), "--spacing-um", "0.01",
                 "--max-fragments-per-neuron", "0"]) == 1
    assert "long.swc: neuron: 1.16e+06 fragments of 2048 points would take 26.6 GiB" in capsys.readouterr().err


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from test_data_swc import _small_tree_swc  # noqa: E402

MOGEN_ERRORS = {"SWCError", "MeshError", "DataError"}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_small_tree_swc().map(str.encode) | st.binary(max_size=300), st.sampled_from([".swc", ".ply", ".obj"]))
def test_fuzz_prepare_fails_only_with_mogen_errors(tmp_path_factory, data, suffix):
    import tempfile

    d = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    (d / "in").mkdir()
    shutil.copy(DATA / "swc" / "quirky.swc", d / "in" / "good.swc")
    (d / "in" / f"fuzz{suffix}").write_bytes(data)
    rc = main(["prepare", str(d / "in"), "--out", str(d / "out"), "--points", "16", "--radius-um", "5", "--spacing-um", "3",
               "--no-preview", "--on-error", "skip", "--val", "0", "--test", "0"])
    assert rc == 0  # the good file is kept whatever the other one holds
    m = read_manifest(d / "out")
    assert "good" in [n["id"] for n in m["neurons"]]
    for f in m["failed"]:  # a bad file is the file's fault, never a crash of mogen
        assert f["error_type"] in MOGEN_ERRORS and f["error"].startswith(str(d / "in" / f"fuzz{suffix}")), f
    shutil.rmtree(d)


def test_prepare_keeps_the_files_of_one_cell_in_one_split(shared_data, tmp_path, capsys):
    sk = shared_data / "skeletons"
    inputs = [sk / "bluepyemodel", sk / "morphology-workflows" / "C060114A5.swc", sk / "neurocollage" / "C170797A-P1.swc",
              sk / "swc-visualizer" / "granule.swc"]
    for seed in (0, 1):
        out = tmp_path / f"ds{seed}"
        assert main(["prepare", *map(str, inputs), "--out", str(out), "--points", "16", "--max-fragments-per-neuron", "2",
                     "--spacing-um", "50", "--no-preview", "--seed", str(seed), "--val", "0.3", "--test", "0.3"]) == 0
        m = read_manifest(out)
        by_id = {n["id"]: n for n in m["neurons"]}
        a, b = by_id["bluepyemodel/C060114A5"], by_id["morphology-workflows/C060114A5"]
        assert a["cell"] == b["cell"] == "c060114a5" and a["split"] == b["split"]
        assert m["cells"]["c060114a5"]["files"] == ["bluepyemodel/C060114A5", "morphology-workflows/C060114A5"]
        assert [len(m["splits"][s]["cells"]) for s in ("train", "val", "test")] == [1, 1, 1]  # 3 cells, not 4 files
    assert "1 cells have several files" in capsys.readouterr().out


def test_workers_cut_the_same_dataset_as_one_process(tmp_path):
    import mogen.data.prepare as prepare

    # workers start clean (fork server or spawn): a plain fork after torch's OpenMP threads ran can hang
    assert prepare._worker_context().get_start_method() != "fork"
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(DATA / "swc" / "quirky.swc", src / "a.swc")
    _offset_swc(src / "b.swc", offset=7.0)
    _offset_swc(src / "c.swc", scale=1.5)
    snaps = []
    for workers in (1, 3):
        out = tmp_path / f"w{workers}"
        assert main(["prepare", str(src), "--out", str(out), "--points", "64", "--radius-um", "5", "--no-preview",
                     "--workers", str(workers)]) == 0
        snaps.append({k: v for k, v in _snapshot(out).items() if k != "manifest.json"})
        assert read_manifest(out)["splits"]["train"]["fragments"] > 0
    assert snaps[0] == snaps[1]  # byte for byte
