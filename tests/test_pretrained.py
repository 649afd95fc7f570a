"""Bundled generators: each one loads and samples inside the crop; bundling keeps what sampling needs."""

import argparse

import numpy as np
import pytest
import torch

from mogen.checkpoint import load_checkpoint
from mogen.pretrained import available, bundle, checkpoint_path, index
from mogen.samples import read_samples
from mogen.sampling import add_arguments, load_generator, run, sample_clouds


@pytest.mark.parametrize("name", available())
def test_bundled_generator_loads_samples_inside_the_ball_and_is_documented(name):
    record = index()[name]
    path = checkpoint_path(name)
    assert path.stat().st_size <= 5 * 2**20  # <= 5 MB
    for key in ("dataset", "split", "manifest_hash", "train_minutes", "realism"):
        assert record.get(key) is not None, f"{name}: index.json lacks {key}"
    state = load_checkpoint(path)
    assert "optimizer" not in state and "model" not in state  # EMA weights only
    model, _ = load_generator(path)
    x = sample_clouds(model, 2, points=256, steps=4, source=state["config"]["source"],
                      source_cond=state["cond_bank"][:2].float())
    assert x.shape == (2, 256, 3) and torch.isfinite(x).all()
    if model.config.endpoint == "ball":
        assert (x.norm(dim=-1) < 1).all()


def test_bundle_keeps_ema_and_sampling_needs_and_the_cli_samples_it(tmp_path):
    from test_train import _cfg, write_dataset
    from mogen.training import train

    data = write_dataset(tmp_path / "data")
    ckpt = train(_cfg(data, tmp_path / "run", max_steps=2, model_overrides={"endpoint": "ball"}))
    root = tmp_path / "bundled"
    root.mkdir()
    path = bundle(ckpt, "tubes", {"dataset": "tubes", "split": "test", "realism": {"feature_mmd": 1.0}},
                  max_conditions=8, root=root)
    state = torch.load(path, weights_only=False)
    assert set(state) >= {"ema", "config", "model_config", "model_type", "data", "cond_bank"}
    assert "optimizer" not in state and "model" not in state and len(state["cond_bank"]) == 8
    assert "dir" not in state["data"]  # no path of the trainer's machine
    rec = index(root)["tubes"]
    assert rec["file"] == "tubes.pt" and rec["realism"] == {"feature_mmd": 1.0} and rec["manifest_hash"]
    # sampling it through the CLI records where the samples came from
    p = argparse.ArgumentParser()
    add_arguments(p)
    out = tmp_path / "samples"
    assert run(p.parse_args(["--ckpt", str(path), "--out", str(out), "--n", "2", "--steps", "4", "--no-ply"])) == 0
    s = read_samples(out / "samples.npz")
    assert s.provenance["checkpoint"] == str(path.resolve()) and s.provenance["clip_ball"] is False
    assert s.provenance["source"] == "moments" and s.provenance["source_split"] == "train"
    assert np.linalg.norm(s.points_unit, axis=-1).max() < 1  # ball endpoint: inside without clipping
