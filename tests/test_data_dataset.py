"""The dataset directory contract: one module reads, writes and checks it (mogen.data.dataset)."""

import json

import pytest

from helpers import tube_dataset
from mogen.data import check_generator, manifest_hash, read_manifest, read_split
from mogen.errors import DatasetError, UsageError


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "ds"
    tube_dataset(root, {"train": {"a": 6, "b": 4}, "val": {"c": 3}, "test": {"d": 5}}, points=32)
    return root


def test_round_trip(dataset):
    m = read_manifest(dataset)
    assert m["splits"]["train"]["neurons"] == ["a", "b"] and m["points_per_fragment"] == 32
    sp = read_split(dataset, "test")
    assert len(sp) == 5 and sp.points.shape == (5, 32, 3) and set(sp.neuron_id) == {"d"}
    assert sp.radius_um == 10.0 and sp.neurons == ["d"]


def test_bad_directories_name_the_problem(dataset, tmp_path):
    with pytest.raises(DatasetError, match="no such dataset directory"):
        read_manifest(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no manifest.json"):
        read_manifest(tmp_path / "empty")
    (dataset / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_manifest(dataset)


def test_split_files_checked_against_manifest(dataset):
    m = json.loads((dataset / "manifest.json").read_text())
    m["splits"]["test"]["fragments"] = 7
    (dataset / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="5 fragments but the manifest says 7"):
        read_split(dataset, "test")
    (dataset / "train" / "points.npy").write_bytes(b"truncated")
    with pytest.raises(DatasetError, match="unreadable split files"):
        read_split(dataset, "train")
    (dataset / "val" / "fragments.npz").unlink()
    with pytest.raises(DatasetError, match="fragments.npz: missing"):
        read_split(dataset, "val")


def test_generator_check_compares_cells_and_datasets(dataset, tmp_path):
    h = manifest_hash(dataset)
    ok = check_generator({"manifest_hash": h, "train_neurons": ["a", "b"]}, dataset)
    assert ok["same_dataset"] and ok["overlap_with_held_out"] == []
    with pytest.raises(UsageError, match=r"cells that are in the val/test split.*\['d'\]"):
        check_generator({"manifest_hash": h, "train_neurons": ["a", "d"]}, dataset)
    assert check_generator({"manifest_hash": h, "train_neurons": ["a", "d"]}, dataset, allow_overlap=True)
    with pytest.raises(UsageError, match="another dataset.*--allow-foreign-generator"):
        check_generator({"manifest_hash": "other", "train_neurons": ["x"]}, dataset)
    foreign = check_generator({"manifest_hash": "other", "train_cells": ["x"]}, dataset, allow_foreign=True)
    assert not foreign["same_dataset"]
    # cells, not files: a file of a held-out cell under another name is still a leak
    m = json.loads((dataset / "manifest.json").read_text())
    m["neurons"] = [{"id": "a", "cell": "A"}, {"id": "b", "cell": "D"}, {"id": "c", "cell": "C"}, {"id": "d", "cell": "D"}]
    (dataset / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UsageError, match=r"\['D'\]"):
        check_generator({"manifest_hash": manifest_hash(dataset), "train_neurons": ["a", "b"]}, dataset)
