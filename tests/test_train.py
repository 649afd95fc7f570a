"""Training, checkpoints, resume, DDP and sampling on a tiny synthetic dataset."""

import json
import os
import socket
import time

import numpy as np
import pytest
import torch

from mogen.checkpoint import load_checkpoint
from mogen.config import TrainConfig, load_config
from mogen.sampling import add_arguments, load_generator, run, sample_clouds
from mogen.training import train
from mogen.data import read_split
from mogen.errors import CheckpointError, UsageError
from mogen.samples import read_samples
from mogen.data.dataset import write_dataset as write_tube_dataset

import helpers
from helpers import tube_clouds, wandb_history

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

N = 128  # points per fragment: small keeps these tests fast


def write_dataset(root, fragments=16, n=N, seed=0, copies=1):
    """A tube dataset; ``copies`` repeats each train fragment (to test overfitting)."""
    rng = np.random.default_rng(seed)
    train = np.repeat(tube_clouds(fragments, n, rng, radius=(0.05, 0.15), bend=0.4), copies, axis=0)
    val, test = (tube_clouds(4, n, rng, radius=(0.05, 0.15), bend=0.4) for _ in range(2))
    frags = {"tube_train": helpers.fragments(train), "tube_val": helpers.fragments(val), "tube_test": helpers.fragments(test)}
    write_tube_dataset(root, frags, {"train": ["tube_train"], "val": ["tube_val"], "test": ["tube_test"]}, radius_um=10.0)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"))


def _cfg(dataset, out, **kw):
    base = dict(data_dir=str(dataset), out_dir=str(out), max_minutes=0, max_steps=4, batch_size=4, wandb="off",
                progress=False, preview_every=0, log_every=1, warmup_steps=2, ckpt_every=1000)
    return TrainConfig(**{**base, **kw})


def _losses(out):
    return [float(r["loss"]) for r in json.loads((out / "log.json").read_text())]


def test_resume_equals_uninterrupted(dataset, tmp_path, monkeypatch):
    import signal

    import mogen.training as training

    full = tmp_path / "full"
    train(_cfg(dataset, full, max_steps=6))
    part = tmp_path / "part"
    real = training.step_generator

    def ctrl_c_at_step_3(cfg, rank, step):  # Ctrl-C arrives in the middle of step 3
        if step == 3:
            signal.raise_signal(signal.SIGINT)
        return real(cfg, rank, step)

    monkeypatch.setattr(training, "step_generator", ctrl_c_at_step_3)
    train(_cfg(dataset, part, max_steps=6))
    assert load_checkpoint(part)["step"] == 4  # the step under way was finished
    monkeypatch.setattr(training, "step_generator", real)
    train(_cfg(dataset, part, max_steps=6), resume=part)
    assert _losses(part) == pytest.approx(_losses(full), rel=1e-5)
    a, b = load_checkpoint(full), load_checkpoint(part)
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], atol=1e-6), k


def test_checkpoint_round_trip_and_contract(dataset, tmp_path):
    ckpt = train(_cfg(dataset, tmp_path / "run", max_steps=2))
    state = load_checkpoint(ckpt)
    for key in ("model", "ema", "optimizer", "config", "step", "rng", "data", "mogen_version"):
        assert key in state
    assert state["data"]["points_per_fragment"] == N and state["data"]["train_neurons"] == ["tube_train"]
    assert len(state["data"]["manifest_hash"]) == 64
    model, _ = load_generator(ckpt)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["ema"][k])
    a = sample_clouds(model, 2, points=N, steps=4, seed=3)
    b = sample_clouds(load_generator(ckpt)[0], 2, points=N, steps=4, seed=3)
    assert torch.equal(a, b)


def test_ddp_two_cpu_processes(dataset, tmp_path):
    """torchrun with 2 CPU processes (gloo): same checkpoint format, ranks stop together."""
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           str(ROOT / "train.py"), f"--data_dir={dataset}", f"--out_dir={out}", "--max_steps=3", "--max_minutes=0",
           "--batch_size=2", "--wandb=off", "--progress=false", "--preview_every=0", "--threads=1", "--val_every=0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    single = load_checkpoint(train(_cfg(dataset, tmp_path / "one", max_steps=1)))
    state = load_checkpoint(out)
    assert state["step"] == 3 and set(state) == set(single)
    assert state["data"]["manifest_hash"] == single["data"]["manifest_hash"]


def _chamfer(a, b):
    d = torch.cdist(a, b)
    return (d.min(1).values.mean() + d.min(0).values.mean()).item()


def test_overfits_one_fragment(tmp_path):
    n = N
    data = write_dataset(tmp_path / "one", fragments=1, n=n, seed=1, copies=4)
    out = tmp_path / "overfit"
    # Logit-normal times: near t = 0 the target is ambiguous (an irreducible part of the
    # loss); noise-to-point pairing makes the rest nearly deterministic (without it the
    # loss stalls ~3x higher).
    cfg = _cfg(data, out, max_steps=400, batch_size=4, lr=3e-3, warmup_steps=20, rotate=False, cond_drop=1.0,
               ema_decay=0.95, time_sampler="logit_normal", source="gaussian", model_overrides={"k": 8})
    train(cfg)
    losses = np.array(_losses(out))
    assert losses[-50:].mean() < losses[:5].mean() / 5
    model, _ = load_generator(out)
    target = torch.from_numpy(np.asarray(read_split(data, "train").points[0]))
    sample = sample_clouds(model, 1, points=n, steps=20, solver="midpoint")[0]
    noise = torch.randn(n, 3)
    assert _chamfer(sample, target) < 0.2 * _chamfer(noise, target)


def test_sample_cli_writes_contract_and_refuses_overwrite(dataset, tmp_path):
    import argparse

    ckpt = train(_cfg(dataset, tmp_path / "run", max_steps=1))
    p = argparse.ArgumentParser()
    add_arguments(p)
    out = tmp_path / "samples"
    args = p.parse_args(["--ckpt", str(ckpt.parent), "--out", str(out), "--n", "3", "--steps", "4", "--cond", "type=axon"])
    assert run(args) == 0
    s = read_samples(out / "samples.npz")
    assert s.points_unit.shape == (3, N, 3) and s.points_unit.dtype == np.float32 and s.radius_um == 10.0
    assert s.cond_mask.tolist() == [[True, False, False, False, False]] * 3 and s.provenance["nfe"] == 4
    assert s.train_neurons == ["tube_train"] and (out / "sample_0002.ply").is_file()
    assert s.provenance["cond"] == "type=axon" and s.provenance["clip_ball"] is False
    assert (out / "samples.png").is_file()
    steer = tmp_path / "steer"
    assert run(p.parse_args(["--ckpt", str(ckpt.parent), "--out", str(steer), "--n", "2", "--steps", "2", "--no-ply",
                             "--cond", "type=dendrite,ends=3,caliber=0.4"])) == 0
    s2 = read_samples(steer / "samples.npz")
    assert s2.cond_mask.tolist() == [[True, False, False, True, True]] * 2 and s2.neurite_type.tolist() == [3, 3]
    assert s2.provenance["cond_groups"] == ["type", "ends", "caliber"]
    for bad in ("ends=x", "colour=red", "type=spine", "caliber=-1"):
        with pytest.raises(UsageError):
            run(p.parse_args(["--ckpt", str(ckpt.parent), "--out", str(tmp_path / "bad"), "--cond", bad]))
    with pytest.raises(UsageError, match="--force"):
        run(args)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        run(p.parse_args(["--ckpt", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]))


def test_config_overrides_and_errors(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"lr": 0.01, "model": "base"}))
    cfg = load_config(f, ["--lr=0.002", "--pair=false", '--model_overrides={"latents": 8}'])
    assert (cfg.lr, cfg.model, cfg.pair, cfg.model_overrides) == (0.002, "base", False, {"latents": 8})
    with pytest.raises(ValueError, match="unknown config key"):
        load_config(overrides=["--learning_rate=1"])
    with pytest.raises(ValueError, match="boolean"):
        load_config(overrides=["--pair=maybe"])


def test_wandb_offline_run_logs_history(dataset, tmp_path):
    out = tmp_path / "wb"
    train(_cfg(dataset, out, max_steps=3, wandb="offline", val_every=2, val_batches=1, batch_size=2, eval_n=4))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval_n"] == 4 and summary["eval_feature_mmd"] >= 0 and 0 <= summary["eval_out_of_ball"] <= 1
    assert all(summary[f"eval_nn_ratio_k{k}"] > 0 for k in (1, 8, 32, 128))
    for _ in range(60):  # wandb-core may still be flushing its log after finish()
        rows = wandb_history(out)
        if len({r["_step"] for r in rows}) == 3:
            break
        time.sleep(0.5)
    steps = [r["_step"] for r in rows]
    assert sorted(set(steps)) == [1, 2, 3]
    logged = set().union(*rows)
    assert {"loss", "lr", "grad_norm", "points_per_s", "val_loss_raw", "val_loss_ema"} <= logged
    assert any("val_loss_ema" in r for r in rows if r["_step"] == 2)


def test_sigterm_saves_a_checkpoint(dataset, tmp_path, monkeypatch):
    import signal

    import mogen.training as training

    real = training.step_generator

    def term_at_step_2(cfg, rank, step):
        if step == 2:
            signal.raise_signal(signal.SIGTERM)
        return real(cfg, rank, step)

    monkeypatch.setattr(training, "step_generator", term_at_step_2)
    train(_cfg(dataset, tmp_path / "term", max_steps=10))
    assert load_checkpoint(tmp_path / "term")["step"] == 3  # the step under way was finished


def test_divergence_stops_and_keeps_the_last_good_checkpoint(dataset, tmp_path):
    from mogen.training import TrainingDiverged

    out = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match="diverged.*lower --lr"):
        train(_cfg(dataset, out, max_steps=50, lr=1e30, grad_clip=0.0, warmup_steps=0, ckpt_every=1))
    state = load_checkpoint(out)
    assert state["step"] < 50
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_run_directory_and_data_dir_checks(dataset, tmp_path, capsys):
    from mogen import training
    from mogen.cli import run_command

    assert run_command("train.py", training, [f"--data_dir={tmp_path / 'typo'}", f"--out_dir={tmp_path / 'r'}"]) == 2
    assert "no dataset there" in capsys.readouterr().err and not (tmp_path / "typo").exists()
    assert run_command("train.py", training, [f"--data_dir={dataset}", f"--out_dir={dataset}"]) == 2
    assert "is a dataset directory" in capsys.readouterr().err
    assert run_command("train.py", training, [f"--data_dir={dataset}", "--lr=nan"]) == 2
    assert "--lr=nan: must be a finite number > 0" in capsys.readouterr().err
    assert run_command("train.py", training, [f"--data_dir={dataset}", f"--out_dir={tmp_path / 'r'}",
                                              f"--resume={tmp_path / 'missing.pt'}"]) == 1
    assert "no checkpoint here" in capsys.readouterr().err
