"""Whole-neurite metrics and report, and the controllability classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mogen.augment.random_walk import random_walk_skeleton
from mogen.data.swc import write_swc
from mogen.evaluate.control import fit_lda
from mogen.evaluate.whole import main as whole_main
from mogen.metrics.neurite import compare_sets, cut_piece, neurite_metrics


def test_cut_piece_takes_the_cable_nearest_the_start():
    nodes = np.stack([np.arange(100.0), np.zeros(100), np.zeros(100)], 1)
    parents = np.arange(-1, 99)
    piece = cut_piece(nodes, parents, np.full(100, 0.3), 50, 20.0)
    assert piece.n_roots == 1 and piece.cable_um == pytest.approx(20.0)
    assert piece.nodes[0, 0] == 50  # rooted at the start, grown both ways
    assert piece.nodes[:, 0].min() == 40 and piece.nodes[:, 0].max() == 60


def test_compare_sets_zero_for_identical_sets_and_positive_otherwise():
    rng = np.random.default_rng(0)
    pieces = []
    for _ in range(4):
        nodes, parents, radii = random_walk_skeleton(rng, n_nodes=150)
        pieces.append(neurite_metrics(cut_piece(nodes, parents, radii, 0, 60.0)))
    same = compare_sets(pieces, pieces)
    assert all(v["W1"] == 0 for v in same.values())
    longer = [dict(m, segment_length_um=np.asarray(m["segment_length_um"]) * 2) for m in pieces]
    assert compare_sets(longer, pieces)["segment_length_um"]["W1"] > 1


def test_whole_report_end_to_end(tmp_path):
    rng = np.random.default_rng(1)
    for folder, k in (("grown", 2), ("ref", 2)):
        for i in range(k):
            nodes, parents, radii = random_walk_skeleton(rng, n_nodes=200)
            write_swc(tmp_path / folder / f"n{i}.swc", nodes, parents, radii)
    out = tmp_path / "report"
    argv = ["--grown", *map(str, sorted((tmp_path / "grown").glob("*.swc"))), "--reference", str(tmp_path / "ref"),
            "--out", str(out), "--pieces", "2", "--random-walks", "2", "--no-resurface"]
    assert whole_main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) == {"reference", "grown", "random_walk"}
    assert report["counts"]["grown"] == 2 and (out / "sholl.png").is_file()
    assert whole_main(argv) == 2  # refuses to overwrite


def test_lda_separates_separable_classes():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, (100, 5)), rng.normal(3, 1, (100, 5))])
    y = np.repeat([2, 3], 100)
    assert (fit_lda(x, y)(x) == y).mean() > 0.95


def test_cut_piece_stays_in_the_start_s_piece_of_a_fragmented_skeleton():
    nodes = np.stack([np.arange(20.0), np.zeros(20), np.zeros(20)], 1)
    parents = np.array([-1, *range(9), -1, *range(10, 19)])  # two chains of 9 µm
    piece = cut_piece(nodes, parents, np.full(20, 0.3), 3, 100.0)
    assert piece.cable_um == pytest.approx(9.0) and len(piece) == 10


def test_control_report_end_to_end(tmp_path):
    """Every condition group is requested alone, realised values are read off the clouds, with
    floors and real ceilings (a one-step generator: the numbers are noise, the report is whole)."""
    import json

    from helpers import tube_dataset
    from mogen.config import TrainConfig
    from mogen.evaluate.control import main as control_main
    from mogen.training import train

    data = tmp_path / "data"
    tube_dataset(data, {"train": {"a": 16}, "val": {"b": 4}, "test": {"c": 12}}, points=128)
    ckpt = train(TrainConfig(data_dir=str(data), out_dir=str(tmp_path / "run"), max_steps=1, max_minutes=0, batch_size=4,
                             wandb="off", progress=False, preview_every=0, val_every=0))
    assert control_main(["--ckpt", str(ckpt), "--reference", str(data), "--out", str(tmp_path / "c"), "--n", "2",
                         "--steps", "2"]) == 0
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    for name in ("ends", "caliber"):
        r = report[name]
        assert r["available"] and len(r["realised"]) == len(r["requested"]) == 2 * len(r["levels"])
        assert {"conditioned", "unconditional_floor", "real_ceiling"} <= set(r)
    assert (tmp_path / "c" / "control.png").stat().st_size > 1000
