"""The reconstruction benchmark end to end on a tiny dataset, its statistics, and its refusals."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from helpers import fragments, wandb_history
from mogen.augment.random_walk import random_walk_fragments, random_walk_skeleton, random_walk_surface
from mogen.data.dataset import manifest_hash, write_dataset
from mogen.data.fragments import crop_fragments
from mogen.evaluate.augment import auroc, main, mean_ci, paired_reduction
from mogen.samples import write_samples as save_samples

TINY = ["--extent", "3", "--voxel-size", "150", "150", "150", "--objects", "8", "--share", "0.25", "--train-volumes", "1",
        "--val-volumes", "1", "--test-volumes", "1", "--packings", "2", "--seeds", "2", "--steps", "5", "--points", "32",
        "--view", "1.5", "--workers", "1"]


def write_tiny_dataset(root, n_neurons=5, radius_um=10.0, n_points=512, seed=0, prefix="rw"):
    """A dataset of random-walk neurons: all but the last in train, 0 val, the last in test."""
    rng = np.random.default_rng(seed)
    frags, splits, neurons = {}, {"train": [], "val": [], "test": []}, []
    for k in range(n_neurons):
        nid, split = f"{prefix}{k}", ("test" if k == n_neurons - 1 else "train")
        nodes, parents, radii = random_walk_skeleton(rng, n_nodes=120)
        anchors = nodes[::10]
        pts, kept = crop_fragments(random_walk_surface(nodes, parents, radii), anchors, radius_um, n_points, rng)
        frags[nid] = fragments(pts, anchors[kept])
        splits[split].append(nid)
        neurons.append(dict(id=nid, source="random walk", kind="skeleton", split=split, fragments=len(pts),
                            cable_um=float(len(nodes) - 1)))
    return write_dataset(root, frags, splits, radius_um, neurons=neurons)


def write_samples(path, train_neurons, dataset, n=16, radius_um=10.0):
    pts = random_walk_fragments(n, n_points=512, radius_um=radius_um, seed=9) * radius_um
    save_samples(path, pts, radius_um, {"checkpoint": "test", "train_neurons": list(train_neurons),
                                        "manifest_hash": manifest_hash(dataset)})


# ----------------------------------------------------------------------------- statistics
def test_auroc_known_values():
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auroc(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 0.5
    assert np.isnan(auroc(np.array([]), np.array([1.0])))


def test_mean_ci_covers_the_mean_and_counts_packing_spread():
    rng = np.random.default_rng(0)
    x = rng.normal(10.0, 1.0, size=(1, 400))
    m, lo, hi = mean_ci(x)
    assert lo < 10.0 < hi and hi - lo < 0.3  # 2 x 1.96 / sqrt(400) = 0.196
    # three packings that differ a lot, seeds within each that agree: the CI must reflect the
    # packings, not only the 30 seed runs
    y = np.array([8.0, 10.0, 12.0])[:, None] + rng.normal(0, 0.1, size=(3, 10))
    m, lo, hi = mean_ci(y)
    assert m == pytest.approx(10.0, abs=0.1) and hi - lo > 2.0
    assert mean_ci(np.full((2, 3), 5.0)) == (5.0, 5.0, 5.0)


def test_paired_reduction_is_paired():
    rng = np.random.default_rng(1)
    base = np.array([5.0, 10.0, 20.0])[:, None] * rng.uniform(0.9, 1.1, size=(3, 10))
    r = paired_reduction(base * 0.95, base)
    assert r["reduction"] == pytest.approx(0.05)
    assert r["ci"][0] == pytest.approx(0.05) and r["ci"][1] == pytest.approx(0.05)  # exact pairing: no spread
    noisy = paired_reduction(base * rng.normal(0.95, 0.05, size=base.shape), base)
    assert noisy["ci"][0] < 0.05 < noisy["ci"][1] and 0 < noisy["mde"] < 0.2
    with pytest.raises(ValueError):
        paired_reduction(np.ones((2, 3)), np.ones((3, 2)))


# ----------------------------------------------------------------------------- end to end
def test_benchmark_end_to_end(tmp_path):
    data = tmp_path / "data"
    write_tiny_dataset(data)
    write_samples(tmp_path / "samples.npz", ["rw0", "rw1"], data)
    args = ["--real", str(data), "--synthetic", str(tmp_path / "samples.npz"), "--out", str(tmp_path / "out")] + TINY
    assert main(args) == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(rep["arms"]) == {"real", "synthetic", "jitter", "elastic", "random-walk"}
    assert len(rep["runs"]) == 5 * 2 * 2  # arms x seeds x packings
    # classifier cells, threshold cells and test cells are disjoint
    cells = rep["inputs"]["cells"]
    assert cells["test"] == ["rw4"] and len(cells["val"]) == 1 and not set(cells["val"]) & set(cells["train"])
    for arm, row in rep["arms"].items():
        assert 0 < row["false_contact_fraction"] < 1 and np.isfinite(row["errors_per_mm"][0])
        assert row["errors_per_mm"][1] <= row["errors_per_mm"][0] <= row["errors_per_mm"][2]
        assert ("vs_real" in row) == (arm != "real")
    # every run: between the two trivial agglomerations, and errors/mm is what was counted
    base = rep["baselines"]
    for r in rep["runs"]:
        none, everything = base["join_none"]["per_packing"][r["packing"]], base["join_all"]["per_packing"][r["packing"]]
        assert r["splits"] <= none["splits"] and r["merges"] <= everything["merges"]
        assert r["errors_per_mm"] == pytest.approx((r["splits"] + r["merges"]) / r["cable_mm"])
        assert r["cable_mm"] == pytest.approx(none["cable_mm"])
    assert none["merges"] == 0 and everything["splits"] == 0
    # the real arm's train volumes hold only real objects; the others replaced 2 of 8 at the same places
    assert rep["volumes"]["train/real"]["replaced"] == 0 and rep["volumes"]["train/synthetic"]["replaced"] > 0
    assert (tmp_path / "out" / "report.md").is_file() and (tmp_path / "out" / "augment.png").is_file()
    vols = sorted(p.name for p in (tmp_path / "out" / "volumes" / "packing0").iterdir())
    assert "test0-real.zarr" in vols and "train0-synthetic.zarr" in vols
    from mogen.augment.io import read_volume

    v = read_volume(tmp_path / "out" / "volumes" / "packing0" / "train0-synthetic.zarr")
    kinds = {o["kind"] for o in v["metadata"]["objects"]}
    assert kinds == {"real", "synthetic"} and v["supervoxels"] is not None and v["attrs"]["resolution"] == [150.0] * 3
    # a rerun resumes from the cache and reports the same numbers
    assert main(args) == 0
    rep2 = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep2["timings"]["runs_from_cache"] == 20 and rep2["arms"]["real"]["errors_per_mm"] == rep["arms"]["real"]["errors_per_mm"]


def test_test_data_replaces_the_test_split(tmp_path):
    write_tiny_dataset(tmp_path / "data")
    write_tiny_dataset(tmp_path / "other", n_neurons=2, seed=5, prefix="other")
    out = tmp_path / "out"
    args = ["--real", str(tmp_path / "data"), "--test-data", str(tmp_path / "other"), "--out", str(out), "--arms", "real",
            "jitter"] + TINY
    args[args.index("--packings") + 1] = "1"
    assert main(args) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["inputs"]["cells"]["test"] == ["other0", "other1"] and set(rep["arms"]) == {"real", "jitter"}


def test_wandb_offline_logs_the_report_tables_and_plot(tmp_path):
    write_tiny_dataset(tmp_path / "data")
    out = tmp_path / "out"
    args = ["--quick", "--real", str(tmp_path / "data"), "--out", str(out), "--arms", "real", "jitter", *TINY, "--wandb",
            "offline"]
    for opt in ("--packings", "--seeds"):
        args[args.index(opt) + 1] = "1"
    assert main(args) == 0
    for _ in range(60):  # wandb-core may still be flushing its log after finish()
        logged = {k: v for row in wandb_history(out) for k, v in row.items()}
        if {"table/arms/path", "table/runs/path", "plot/augment/path"} <= set(logged):
            break
        time.sleep(0.5)
    assert logged["table/arms/_type"] == "table-file" and logged["plot/augment/_type"] == "image-file"
    assert logged["table/arms/nrows"] == 2 and logged["table/runs/nrows"] == 2  # arms x seeds x packings
    (run_dir,) = out.glob("wandb/offline-run-*")
    table = json.loads((run_dir / "files" / logged["table/arms/path"]).read_text())
    arms = {r[0]: dict(zip(table["columns"], r)) for r in table["data"]}
    rep = json.loads((out / "report.json").read_text())["arms"]
    assert arms["jitter"]["errors_per_mm"] == pytest.approx(rep["jitter"]["errors_per_mm"][0])
    assert arms["jitter"]["vs_real_errors_per_mm"] == pytest.approx(rep["jitter"]["vs_real"]["errors_per_mm"]["reduction"])


def test_refusals_before_any_work(tmp_path, capsys):
    data = tmp_path / "data"
    write_tiny_dataset(data)
    base = ["--real", str(data), "--out", str(tmp_path / "o")] + TINY
    write_samples(tmp_path / "leak.npz", ["rw0", "rw4"], data)  # rw4 is the test cell
    assert main(base + ["--synthetic", str(tmp_path / "leak.npz")]) == 2
    assert "val/test split" in capsys.readouterr().err
    write_tiny_dataset(tmp_path / "elsewhere", seed=3, prefix="else")
    write_samples(tmp_path / "foreign.npz", ["else0"], tmp_path / "elsewhere")
    assert main(base + ["--synthetic", str(tmp_path / "foreign.npz")]) == 2
    assert "--allow-foreign-generator" in capsys.readouterr().err
    assert main(base + ["--test-data", str(data)]) == 2  # its cells are the classifier's
    assert "holds cells the classifier trains" in capsys.readouterr().err
    for bad, msg in ((["--voxel-size", "0", "150", "150"], "--voxel-size"), (["--extent", "1e5"], "fit in memory"),
                     (["--share", "1.5"], "--share"), (["--arms", "jitter"], "include real"), (["--seeds", "0"], "--seeds")):
        assert main(base + bad) == 2
        assert msg in capsys.readouterr().err
    assert main(base + ["--arms", "real", "synthetic"]) == 2
    assert "--synthetic" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing was written
