"""The augmentation experiment end to end on a tiny dataset of random-walk neurons."""

from __future__ import annotations

import json

import numpy as np

from helpers import fragments
from mogen.augment.random_walk import random_walk_skeleton, random_walk_surface
from mogen.data.fragments import crop_fragments
from mogen.data.dataset import manifest_hash, write_dataset
from mogen.samples import write_samples as save_samples


def write_tiny_dataset(root, n_neurons=5, radius_um=10.0, n_points=512, seed=0):
    """A dataset of random-walk neurons: 4 train neurons, 0 val, 1 test."""
    rng = np.random.default_rng(seed)
    frags, splits, neurons = {}, {"train": [], "val": [], "test": []}, []
    for k in range(n_neurons):
        nid, split = f"rw{k}", ("test" if k == n_neurons - 1 else "train")
        nodes, parents, radii = random_walk_skeleton(rng, n_nodes=120)
        nodes = nodes + rng.normal(scale=2.0, size=3)  # neurons overlap, as in neuropil
        anchors = nodes[::5]
        pts, kept = crop_fragments(random_walk_surface(nodes, parents, radii), anchors, radius_um, n_points, rng)
        frags[nid] = fragments(pts, anchors[kept])
        splits[split].append(nid)
        neurons.append(dict(id=nid, source="random walk", kind="skeleton", split=split, fragments=len(pts),
                            cable_um=float(len(nodes) - 1)))
    return write_dataset(root, frags, splits, radius_um, neurons=neurons)


def write_samples(path, train_neurons, n=24, radius_um=10.0, dataset=None):
    from mogen.augment.random_walk import random_walk_fragments

    pts = random_walk_fragments(n, n_points=512, radius_um=radius_um, seed=9) * radius_um
    save_samples(path, pts, radius_um, {"checkpoint": "test", "train_neurons": list(train_neurons),
                                        "manifest_hash": manifest_hash(dataset) if dataset else None})


def test_experiment_end_to_end(tmp_path):
    from mogen.evaluate.augment import main

    write_tiny_dataset(tmp_path / "data")
    write_samples(tmp_path / "samples.npz", ["rw0", "rw1"], dataset=tmp_path / "data")
    args = ["--real", str(tmp_path / "data"), "--synthetic", str(tmp_path / "samples.npz"), "--out", str(tmp_path / "out"),
            "--seeds", "2", "--steps", "3", "--shares", "0.3", "--control-shares", "0.1", "0.3", "--train-candidates", "40", "--extra-candidates", "20",
            "--val-candidates", "20", "--test-candidates", "30", "--points", "64", "--workers", "1"]
    assert main(args) == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    arms = {(r["arm"], r["share"]) for r in rep["table"]}
    assert arms == {("real", 0.0), ("synthetic", 0.1), ("synthetic", 0.3), ("jitter", 0.1), ("jitter", 0.3),
                    ("random-walk", 0.1), ("random-walk", 0.3)}
    assert len(rep["runs"]) == 7 * 2 + 1 * 2  # arms x seeds + the smaller learning-curve size
    assert [c["n_train"] for c in rep["learning_curve"]] == [2, 3]
    assert rep["splits"]["val"] and not set(rep["splits"]["val"]) & set(rep["splits"]["train"])
    real = next(r for r in rep["table"] if r["arm"] == "real")
    assert real["errors"][0] >= 0 and 0 <= real["auroc"][0] <= 1
    assert (tmp_path / "out" / "report.md").is_file() and (tmp_path / "out" / "augment.png").is_file()
    # a rerun with new samples retrains only the synthetic arm; everything else comes from the cache
    write_samples(tmp_path / "samples.npz", ["rw0"], n=20, dataset=tmp_path / "data")
    assert main(args) == 0
    rep2 = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep2["timings"]["runs_from_cache"] == len(rep2["runs"]) - 2 * 2
    real2 = next(r for r in rep2["table"] if r["arm"] == "real")
    assert real2["errors"] == real["errors"]


def test_experiment_refuses_generator_trained_on_test(tmp_path, capsys):
    from mogen.evaluate.augment import main

    write_tiny_dataset(tmp_path / "data")
    write_samples(tmp_path / "samples.npz", ["rw0", "rw4"], dataset=tmp_path / "data")  # rw4 is the test neuron
    assert main(["--real", str(tmp_path / "data"), "--synthetic", str(tmp_path / "samples.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "val/test split" in capsys.readouterr().err
