"""Agglomeration replay: covered cable, the split floor, merges counted at contacts."""

from __future__ import annotations

import numpy as np
import pytest

from mogen.evaluate.replay import Replay, cable_in_crops, covered_cable_um


def line_points(start, end, step=0.2):
    start, end = np.asarray(start, float), np.asarray(end, float)
    n = int(np.linalg.norm(end - start) / step) + 1
    return start + np.linspace(0, 1, n)[:, None] * (end - start)


def test_cable_in_crops_counts_only_cable_near_anchors():
    xyz = np.array([[0.0, 0, 0], [40.0, 0, 0], [100.0, 0, 0]])
    parent = np.array([-1, 0, 1])
    assert cable_in_crops(xyz, parent, np.array([[50.0, 0, 0]]), 10.0) == pytest.approx(20.0, abs=0.5)
    # ends clip the crop; two crops far apart add up
    assert cable_in_crops(xyz, parent, np.array([[5.0, 0, 0], [95.0, 0, 0]]), 10.0) == pytest.approx(30.0, abs=0.5)
    # a crop covering everything gives the whole cable
    assert cable_in_crops(xyz, parent, np.array([[50.0, 0, 0]]), 60.0) == pytest.approx(100.0, abs=1e-6)


def test_covered_cable_uses_manifest_when_all_anchors_kept(tmp_path):
    entry = dict(id="a", source=str(tmp_path / "missing.swc"), fragments=10, anchors=10, skipped_anchors=0, cable_um=123.0)
    assert covered_cable_um(entry, np.zeros((10, 3)), 10.0) == 123.0
    entry["anchors"] = 50  # only some crops kept: needs the source, which is missing
    with pytest.raises(FileNotFoundError, match="missing.swc"):
        covered_cable_um(entry, np.zeros((10, 3)), 10.0)


def test_replay_split_floor_and_merges():
    # neuron "a": two straight pieces 60 µm apart (crops that never touch) -> one split nobody can mend;
    # neuron "b" crosses a's first piece
    a = np.concatenate([line_points([0, 0, 0], [40, 0, 0]), line_points([100, 0, 0], [140, 0, 0])])
    b = line_points([20, -20, 0.5], [20, 20, 0.5])
    rep = Replay({"a": a, "b": b}, ["a"], {"a": 80.0, "b": 40.0}, radius_um=10.0, n_points=64, piece_um=15.0, contact_um=1.0)
    assert rep.floor["a"] == 2 and rep.summary["unjoinable_pieces"] == 1
    assert rep.same.any() and (~rep.same).any()
    perfect = rep.errors(rep.same.astype(float), 0.5)  # accept exactly the true contacts
    assert perfect["splits"] == 0 and perfect["merges"] == 0
    nothing = rep.errors(np.zeros(len(rep.edges)), 0.5)
    assert nothing["splits"] == int((rep.same & rep.involved).sum()) > 0  # a chain of pieces: one join per contact
    everything = rep.errors(np.ones(len(rep.edges)), 0.5)
    assert everything["splits"] == 0 and everything["merges"] == int((~rep.same).sum()) > 0
    assert everything["merge_per_mm"] == pytest.approx(everything["merges"] / 0.08)


def test_merges_through_another_neuron_do_not_cancel_splits():
    # a's two pieces are joined only through b: that is two merges, not fewer splits than none
    a = np.concatenate([line_points([0, 0, 0], [10, 0, 0]), line_points([30, 0, 0], [40, 0, 0])])
    b = line_points([10.5, 0, 0], [29.5, 0, 0])
    rep = Replay({"a": a, "b": b}, ["a"], {"a": 20.0, "b": 19.0}, radius_um=10.0, n_points=32, piece_um=100.0, contact_um=1.0)
    assert rep.floor["a"] == 2 and (~rep.same).sum() == 2
    everything = rep.errors(np.ones(len(rep.edges)), 0.5)
    assert everything["splits"] == 0 and everything["merges"] == 2
