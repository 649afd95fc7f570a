"""`mogen prepare` end to end: dataset layout per the contract, loader, bad-input handling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mogen.cli import main
from mogen.data import FragmentDataset, make_loader, manifest_hash
from mogen.data.conditions import COND_DIM, mst_leaf_count

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
    assert [len(m["splits"][s]["neurons"]) for s in ("train", "val", "test")] == [4, 0, 1]
    for n in m["neurons"]:
        assert {"id", "source", "kind", "split", "fragments", "cable_um"} <= set(n)
        assert n["kind"] == "mesh" and n["units"] == "8 nanometer" and 1500 < n["cable_um"] < 3000
    seen = [i for s in m["splits"].values() for i in s["neurons"]]
    assert len(seen) == len(set(seen)) == 5  # no neuron in two splits


def test_split_files(navis_dataset):
    m = json.loads((navis_dataset / "manifest.json").read_text())
    for split in ("train", "val", "test"):
        pts = np.load(navis_dataset / split / "points.npy", mmap_mode="r")
        meta = np.load(navis_dataset / split / "fragments.npz")
        f = m["splits"][split]["fragments"]
        assert pts.shape == (f, POINTS, 3) and pts.dtype == np.float32
        assert meta["anchor_um"].shape == (f, 3) and meta["anchor_um"].dtype == np.float32
        assert meta["neuron_id"].shape == (f,) and meta["neurite_type"].dtype == np.int8
        assert meta["mst_leaves"].dtype == np.int32
        assert set(meta["neuron_id"].tolist()) <= set(m["splits"][split]["neurons"])
        if f:
            assert (np.linalg.norm(pts, axis=-1) <= 1 + 1e-6).all()
            assert meta["mst_leaves"][0] == mst_leaf_count(pts[0])
    assert m["splits"]["val"]["fragments"] == 0


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


def test_refuses_non_empty_out(navis_dataset, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    args = ["prepare", str(DATA / "swc" / "quirky.swc"), "--out", str(out), "--points", "64", "--radius-um", "5",
            "--no-preview"]
    assert main(args) == 2
    assert "not empty; use --force" in capsys.readouterr().err
    assert main(args + ["--force", "--test", "0"]) == 0
    assert (out / "keep.txt").exists() and (out / "manifest.json").exists()


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
    assert [n["id"] for n in m["neurons"]] == ["good"]
    assert "5 inputs, 1 ok, 4 failed" in text and "bad_cycle.swc" in text  # the summary table


def test_on_error_raise_stops_with_a_clear_message(tmp_path, capsys):
    d, out = _bad_folder(tmp_path), tmp_path / "out"
    assert main(["prepare", str(d), "--out", str(out), "--points", "64", "--radius-um", "5"]) == 1
    err = capsys.readouterr().err
    assert "bad_cycle.swc: line" in err and "cycle" in err and "Traceback" not in err
    assert not (out / "manifest.json").exists()


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
