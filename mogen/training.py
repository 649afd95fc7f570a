"""The training loop: flow matching on a fragment dataset, one process or many (torchrun).

What a run writes into ``cfg.out_dir`` (rank 0 only):

- ``ckpt.pt``        checkpoint every ``ckpt_every`` steps and at exit (Ctrl-C and SIGTERM included)
- ``config.json``    the resolved configuration
- ``log.csv``        step, seconds, loss, lr, grad norm, points/s, validation losses of the raw
                     and EMA weights (``log.json``: same, at exit); ``loss.png`` at exit
- ``preview.png``    a few samples of the EMA model (every ``preview_every`` minutes, at exit)
- ``wandb/``         the same numbers and previews as an offline wandb run (``wandb sync`` it)
- ``summary.json``   final numbers (with ``eval_n`` > 0: realism of the EMA model vs the val split)

Safety: a non-finite loss or gradient stops training with a message and keeps the last good
checkpoint; the first Ctrl-C or SIGTERM (what ``timeout`` and cluster schedulers send) stops at
the next step boundary and saves a checkpoint.

Reproducibility: every random draw of step ``s`` (noise, times, condition masks) comes
from a generator seeded by ``(seed, rank, s)``, and the batches of epoch ``e`` come from
a loader seeded by ``(seed, rank, e)``, so ``resume`` continues exactly where the
interrupted run was (same losses as an uninterrupted run with a step-based schedule).

Multi-GPU / multi-node (or several CPU processes, gloo): launch the same script with
``torchrun``; each rank sees a different shuffle of the data, gradients are averaged by
DistributedDataParallel, and the ranks agree on when to stop.

Examples
--------
>>> from mogen.config import TrainConfig
>>> cfg = TrainConfig(data_dir="runs/data", max_steps=10, max_minutes=0)  # doctest: +SKIP
>>> train(cfg)                                                           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import csv
import itertools
import math
import os
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mogen import __version__
from mogen.checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mogen.config import TrainConfig, config_dict, load_config
from mogen.errors import MogenError, UsageError
from mogen.outputs import atomic_path, write_json
from mogen.flow import drop_conditions, flow_matching_loss
from mogen.model import build_model, count_parameters
from mogen.runtime import pick_device, set_threads, setup_distributed

DEFAULT_DATA = "runs/data"


class TrainingDiverged(MogenError):
    """The loss or the gradient became NaN/inf (learning rate too high, bad data)."""


def ensure_data(data_dir: str | Path) -> Path:
    """Return the dataset dir; only the default ``runs/data`` is prepared when missing
    (the navis example neurons), so a mistyped path is an error, not a silent substitute."""
    from mogen.data import read_manifest

    data_dir = Path(data_dir)
    if (data_dir / "manifest.json").is_file():
        read_manifest(data_dir)  # checked now, not at the first batch
        return data_dir
    if data_dir != Path(DEFAULT_DATA):
        raise UsageError(f"--data_dir {data_dir}: no dataset there (no manifest.json); make one with "
                         f"`mogen prepare INPUTS --out {data_dir}`, or omit --data_dir to use the navis example neurons")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise UsageError(f"{data_dir} exists but holds no manifest.json (an interrupted preparation?); "
                         f"remove it or run `mogen prepare --out {data_dir} --force`")
    print(f"No dataset at {data_dir}: preparing the default navis neurons there (mogen prepare) ...", flush=True)
    from mogen.cli import main as mogen_main

    rc = mogen_main(["prepare", "--out", str(data_dir)])
    if rc or not (data_dir / "manifest.json").is_file():
        raise UsageError(f"mogen prepare --out {data_dir} failed (exit code {rc}); see the message above")
    return data_dir


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, then constant or cosine decay over ``progress`` in [0, 1]."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)


def ema_decay_at(cfg: TrainConfig, step: int) -> float:
    # Warm-up: early weights are bad, so the average forgets them quickly.
    return min(cfg.ema_decay, (1 + step) / (10 + step)) if cfg.ema_warmup else cfg.ema_decay


def batches(cfg: TrainConfig, data_dir: Path, rank: int, start_step: int):
    """Endless batches; the ``start_step``-th is the one an uninterrupted run would see next."""
    from mogen.data import make_loader

    def loader(epoch):
        return make_loader(
            data_dir, "train", cfg.batch_size, shuffle=True, rotate=cfg.rotate, jitter=cfg.jitter,
            seed=cfg.seed + 1_000_003 * rank + 7919 * epoch, drop_last=True,
        )

    per_epoch = len(loader(0))
    if per_epoch == 0:
        raise UsageError(f"{data_dir}/train has fewer fragments than one batch (--batch_size={cfg.batch_size})")
    epoch, skip = divmod(start_step, per_epoch)
    while True:
        yield from itertools.islice(loader(epoch), skip, None)
        epoch, skip = epoch + 1, 0


def step_generator(cfg: TrainConfig, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((cfg.seed * 1_000_003 + rank) * 10_000_019 + step)


def training_conditions(data_dir: Path, chunk: int = 256) -> torch.Tensor:
    """Condition vectors [F, 15] of all training fragments (unrotated), kept in checkpoints
    so that sampling can draw realistic conditions / noise moments without the data."""
    from mogen.data import FragmentDataset

    ds = FragmentDataset(data_dir, "train")
    return torch.cat([ds.batch(range(i, min(i + chunk, len(ds))))["cond"] for i in range(0, len(ds), chunk)])


def preview(model, path: Path, cfg: TrainConfig, cond_bank: torch.Tensor, n: int = 4, points: int = 2048,
            steps: int = 10, seed: int = 0, title: str = ""):
    """Sample ``n`` unconditional clouds with ``steps`` midpoint steps and plot them."""
    from mogen.preview import plot_clouds
    from mogen.sampling import draw_conditions, sample_clouds

    source_cond = draw_conditions(cond_bank, n, seed) if cfg.source == "moments" else None
    pts = sample_clouds(model, n, points=points, steps=steps, solver="midpoint", noise_std=cfg.noise_std, seed=seed,
                        source=cfg.source, source_cond=source_cond)
    plot_clouds(pts, path, title=title)
    return pts


class Validation:
    """Flow-matching loss of the raw and the EMA weights on fixed validation batches.

    Batches, noise, times and condition masks are drawn once, so successive values differ only
    because the weights changed. Uses the val split (none: validation is skipped).
    """

    def __init__(self, cfg: TrainConfig, data_dir: Path, device: torch.device):
        from mogen.data import FragmentDataset

        self.cfg, self.device, self.batches = cfg, device, []
        ds = FragmentDataset(data_dir, "val", rotate=cfg.rotate, seed=cfg.seed + 12345)
        n = min(len(ds) // cfg.batch_size, cfg.val_batches)
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(cfg.seed))
        for i in range(n):
            b = ds.batch(order[i * cfg.batch_size:(i + 1) * cfg.batch_size].numpy())
            self.batches.append((b["points"], b["cond"], cfg.seed * 7 + i))

    def __bool__(self) -> bool:
        return bool(self.batches)

    @torch.no_grad()
    def loss(self, model: torch.nn.Module, groups: int) -> float:
        cfg, total = self.cfg, 0.0
        was_training = model.training
        model.eval()
        for x1, cond, seed in self.batches:
            g = torch.Generator().manual_seed(seed)
            mask = drop_conditions(len(x1), groups, cfg.cond_drop, cfg.cond_drop_all, g).to(self.device)
            total += flow_matching_loss(model, x1.to(self.device), cond.to(self.device), mask, g, cfg.time_sampler,
                                        cfg.noise_std, cfg.pair, source=cfg.source).item()
        model.train(was_training)
        return total / len(self.batches)


@dataclass
class Run:
    """Everything one training run holds (built by :func:`setup`)."""

    cfg: TrainConfig
    device: torch.device
    rank: int
    world: int
    data_dir: Path
    manifest: dict
    data_info: dict
    cond_bank: torch.Tensor
    model: torch.nn.Module
    ema: torch.nn.Module
    opt: torch.optim.Optimizer
    step: int = 0
    spent: float = 0.0  # training seconds so far (resumed runs continue the count)

    @property
    def writer(self) -> bool:
        return self.rank == 0

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.out_dir)

    def state(self) -> dict:
        """The checkpoint dict (contract: :mod:`mogen.checkpoint`)."""
        return {
            "model": self.model.state_dict(), "ema": self.ema.state_dict(), "optimizer": self.opt.state_dict(),
            "model_type": self.model.model_type, "model_config": asdict(self.model.config),
            "config": config_dict(self.cfg), "step": self.step, "train_seconds": self.spent, "rng": rng_state(),
            "data": self.data_info, "cond_bank": self.cond_bank, "mogen_version": __version__,
        }


def setup(cfg: TrainConfig, resume: str | Path | None = None) -> Run:
    """Device, process group, data, model, EMA and optimiser (restored from ``resume``)."""
    from mogen.data import cell_of, manifest_hash, read_manifest

    cfg.validate()
    device = pick_device(cfg.device)
    rank, world = setup_distributed(device)
    set_threads(cfg.threads)
    data_dir = ensure_data(cfg.data_dir) if rank == 0 else Path(cfg.data_dir)
    if world > 1:
        dist.barrier()
    manifest = read_manifest(data_dir)
    cells = cell_of(manifest)
    train_neurons = list(manifest["splits"]["train"]["neurons"])
    data_info = {
        "dir": str(data_dir.resolve()), "manifest_hash": manifest_hash(data_dir), "train_neurons": train_neurons,
        "train_cells": sorted({cells[n] for n in train_neurons}), "radius_um": manifest["radius_um"],
        "points_per_fragment": manifest["points_per_fragment"],
    }
    cond_bank = training_conditions(data_dir)
    torch.manual_seed(cfg.seed)
    model = build_model(
        cfg.model_type, cfg.model, **{"reference_points": manifest["points_per_fragment"], **cfg.model_overrides}
    ).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    run = Run(cfg, device, rank, world, data_dir, manifest, data_info, cond_bank, model, ema, opt)
    if resume:
        state = load_checkpoint(resume, map_location=device)
        if state["data"]["manifest_hash"] != data_info["manifest_hash"]:
            raise UsageError(f"{state['path']} was trained on another dataset (manifest hash differs from {data_dir})")
        if state.get("optimizer") is None or state.get("model") is None:
            raise UsageError(f"{state['path']} holds EMA weights only (a bundled generator?); it cannot be resumed")
        try:
            model.load_state_dict(state["model"])
            ema.load_state_dict(state["ema"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise UsageError(f"{state['path']} does not match this run's model config ({e}); "
                             "resume with the config it was trained with") from None
        run.step, run.spent = state["step"], state.get("train_seconds", 0.0)
        set_rng_state(state["rng"])
    return run


def check_out_dir(cfg: TrainConfig, resume) -> None:
    """The run directory must be new, or this run's own (with --resume); never a dataset."""
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out_dir {out} exists and is not a directory")
    if (out / "manifest.json").exists():
        raise UsageError(f"--out_dir {out} is a dataset directory; choose a run directory such as runs/tiny")
    if resume is None and (out / CHECKPOINT_NAME).exists():
        raise UsageError(f"{out / CHECKPOINT_NAME} exists; pass --resume to continue it or --out_dir=NEW_DIR to start a new run")


def train(cfg: TrainConfig, resume: str | Path | None = None) -> Path:
    """Train a velocity network; returns the checkpoint path (see module docstring)."""
    from mogen.runlog import RunLog

    run = setup(cfg, resume)
    model, ema, opt, device, world = run.model, run.ema, run.opt, run.device, run.world
    out_dir, ckpt_path = run.out_dir, run.out_dir / CHECKPOINT_NAME
    log = None
    if run.writer:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "config.json", config_dict(cfg), indent=2)
        rows = _resumed_rows(out_dir / "log.csv", run.step) if resume else []
        log = RunLog(out_dir, config={**config_dict(cfg), "data": run.data_info}, wandb_mode=cfg.wandb, rows=rows)
        print(f"mogen train: {cfg.model_type}/{cfg.model} ({count_parameters(model) / 1e6:.2f}M parameters) on {device}"
              f"{f' x{world}' if world > 1 else ''}, data {run.data_dir} "
              f"({run.manifest['splits']['train']['fragments']} train fragments), run dir {out_dir}"
              + (f", wandb {log.wandb_dir}" if log.wandb_dir else ""), flush=True)
    net = DistributedDataParallel(model) if world > 1 else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    validation = Validation(cfg, run.data_dir, device) if cfg.val_every and run.writer else None
    if run.writer and cfg.val_every and not validation:
        print(f"note: {run.data_dir} has no validation batch (val split smaller than --batch_size); no validation losses")

    budget = cfg.max_minutes * 60
    decay_budget = 60 * (cfg.schedule_minutes or cfg.max_minutes)
    snapshots = [m for m in sorted(float(m) for m in cfg.snapshot_minutes.split(",") if m.strip()) if 60 * m > run.spent]
    n_points = run.manifest["points_per_fragment"]
    groups = model.config.cond_groups
    data = batches(cfg, run.data_dir, run.rank, run.step)
    bar = _progress(cfg, run.writer, run.step)
    t_start = time.perf_counter() - run.spent
    last_preview = time.perf_counter()
    stop = _StopOnSignal()
    diverged = None
    try:
        while True:
            run.spent = time.perf_counter() - t_start
            done = bool((cfg.max_steps and run.step >= cfg.max_steps) or (budget and run.spent >= budget))
            if _any_rank(done or stop.requested, world, device):
                if stop.requested and run.writer:
                    print(f"\n{stop.signal_name} at step {run.step}; saving checkpoint (resume with --resume)", flush=True)
                break
            progress = max(run.step / cfg.max_steps if cfg.max_steps else 0.0,
                           run.spent / decay_budget if decay_budget else 0.0)
            if run.writer and snapshots and run.spent >= 60 * snapshots[0]:
                save_checkpoint(run.state(), ckpt_path)
                snap = out_dir / f"ckpt_{snapshots.pop(0):g}min.pt"
                with atomic_path(snap) as tmp:  # others may be waiting for it: never half-written
                    shutil.copyfile(ckpt_path, tmp)
            lr = lr_at(cfg, run.step, progress)
            for group in opt.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            batch = next(data)
            g = step_generator(cfg, run.rank, run.step)
            x1 = batch["points"].to(device)
            cond = batch["cond"].to(device)
            mask = drop_conditions(len(x1), groups, cfg.cond_drop, cfg.cond_drop_all, g).to(device)
            with autocast:
                loss = flow_matching_loss(net, x1, cond, mask, g, cfg.time_sampler, cfg.noise_std, cfg.pair,
                                          source=cfg.source, points=cfg.train_points)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
            if not torch.isfinite(grad_norm):  # all-reduced gradients: every rank agrees
                diverged = (f"loss {loss.item():.4g}, gradient norm {float(grad_norm):.4g} at step {run.step + 1} "
                            f"(--lr={cfg.lr:g}); the weights were not updated")
                break
            opt.step()
            update_ema(ema, model, ema_decay_at(cfg, run.step))
            run.step += 1
            dt = time.perf_counter() - t0
            if not run.writer:
                continue
            loss_value = loss.item()
            pts_per_s = world * x1.shape[0] * x1.shape[1] / dt
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", pts_s=f"{pts_per_s:,.0f}")
            row = {}
            if run.step % cfg.log_every == 0 or run.step == 1:
                row = {"step": run.step, "seconds": round(time.perf_counter() - t_start, 2), "loss": loss_value,
                       "lr": lr, "grad_norm": float(grad_norm), "points_per_s": round(pts_per_s)}
            if validation and run.step % cfg.val_every == 0:
                row = row or {"step": run.step, "seconds": round(time.perf_counter() - t_start, 2)}
                row.update(val_loss_raw=validation.loss(model, groups), val_loss_ema=validation.loss(ema, groups))
            if row:
                log.log(row, step=run.step)
            if run.step % cfg.ckpt_every == 0:
                run.spent = time.perf_counter() - t_start
                save_checkpoint(run.state(), ckpt_path)
            if cfg.preview_every and time.perf_counter() - last_preview > 60 * cfg.preview_every:
                _preview(run, log, n_points, title=f"step {run.step}")
                last_preview = time.perf_counter()
    finally:
        stop.restore()
        bar.close()
        run.spent = time.perf_counter() - t_start
        if run.writer and diverged is None:
            save_checkpoint(run.state(), ckpt_path)
    if run.writer:
        if diverged is None and cfg.preview_every:
            _preview(run, log, n_points, title=f"step {run.step}")
        if diverged is None and cfg.eval_n:
            _final_eval(run, log)
        log.summary({"step": run.step, "train_minutes": run.spent / 60, "diverged": diverged is not None})
        log.close()
    if world > 1:
        dist.barrier()
    if diverged is not None:
        kept = f"the last good checkpoint {ckpt_path} (step {load_checkpoint(ckpt_path)['step']}) is kept" \
            if ckpt_path.is_file() else "no checkpoint was written"
        raise TrainingDiverged(f"training diverged: {diverged}; {kept}. Try a lower --lr.")
    if run.writer:
        print(f"checkpoint: {ckpt_path} (step {run.step}, {run.spent / 60:.1f} min); log: {out_dir / 'log.csv'}", flush=True)
    return ckpt_path


def _any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True on every rank if it is true on any (so all ranks stop at the same step)."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _preview(run: Run, log, n_points: int, title: str) -> None:
    path = run.out_dir / "preview.png"
    preview(run.ema, path, run.cfg, run.cond_bank, points=n_points, steps=run.cfg.preview_steps, title=title)
    log.image("preview", path, step=run.step, caption=title)


def _final_eval(run: Run, log) -> None:
    """Realism of the EMA model against the val split: feature-MMD (with its n and bias floor),
    out-of-ball fraction, nearest-neighbour spacing ratio (generated / real)."""
    import numpy as np

    from mogen.data import read_split
    from mogen.metrics.features import cloud_features
    from mogen.metrics.mmd import feature_scale, mmd_floor, mmd_rbf
    from mogen.metrics.pointcloud import SPACING_KS, knn_spacing
    from mogen.sampling import draw_conditions, sample_clouds

    val = read_split(run.data_dir, "val")
    if len(val) < 2:
        print("note: no validation fragments; skipping the final realism evaluation (eval_n)")
        return
    cfg = run.cfg
    n = min(cfg.eval_n, len(val))
    rng = np.random.default_rng(cfg.seed)
    ref = np.asarray(val.points[np.sort(rng.choice(len(val), n, replace=False))])
    source_cond = draw_conditions(run.cond_bank, n, cfg.seed) if cfg.source == "moments" else None
    gen = sample_clouds(run.ema, n, points=ref.shape[1], steps=20, noise_std=cfg.noise_std, seed=cfg.seed,
                        source=cfg.source, source_cond=source_cond).numpy()
    train = read_split(run.data_dir, "train").points
    scale = feature_scale(cloud_features(np.asarray(train[np.sort(rng.choice(len(train), min(len(train), 512), replace=False))])))
    fg, fr = cloud_features(gen), cloud_features(ref)
    out = {"eval_n": n, "eval_feature_mmd": 1000 * mmd_rbf(fg / scale, fr / scale), "eval_mmd_floor": mmd_floor(n, n),
           "eval_out_of_ball": float((np.linalg.norm(gen, axis=-1) > 1).mean()),
           "eval_nn_ratio": float(fg[:, 4].mean() / fr[:, 4].mean())}
    for k, g, r in zip(SPACING_KS, knn_spacing(gen).mean(0), knn_spacing(ref).mean(0)):
        out[f"eval_nn_ratio_k{k}"] = float(g / r)
    log.summary(out)
    print("final realism vs val split: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()), flush=True)


def _resumed_rows(log_csv: Path, step: int) -> list[dict]:
    """The rows of an earlier run's log up to the resumed step (numbers parsed back)."""
    if not log_csv.is_file():
        return []
    with log_csv.open() as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    return [{k: _number(v) for k, v in r.items() if v != ""} for r in rows]


def _number(v: str):
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


class _StopOnSignal:
    """Turn the first Ctrl-C (SIGINT) or SIGTERM into a request to stop at the next step boundary.

    A KeyboardInterrupt in the middle of an optimiser step would leave weights and step
    counter out of step in the final checkpoint. A second signal interrupts at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested, self.signal_name, self._old = False, "", {}
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signal_name = True, signal.Signals(signum).name

    def restore(self):
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}


def _progress(cfg: TrainConfig, writer: bool, step: int):
    from tqdm.auto import tqdm

    return tqdm(
        total=cfg.max_steps or None, initial=step, disable=not (writer and cfg.progress),
        desc="train", unit="step", dynamic_ncols=True,
    )


DESCRIPTION = """\
Train the flow-matching generator. With no arguments: prepare the default navis data into
runs/data if needed and train the tiny model for a few minutes on this machine. Every config
key can be set as --key=value (or in a JSON/TOML --config file); values are checked before
any work. Runs log to runs/<name>/log.csv and to an offline wandb run (--wandb=online to
upload live, --wandb=off to skip; `wandb sync RUN_DIR/wandb/offline-run-*` uploads later).
"""


def add_arguments(p) -> None:
    import argparse
    from typing import get_type_hints

    p.add_argument("--config", help="JSON or TOML file with config keys (command-line keys win)")
    p.add_argument(
        "--resume", nargs="?", const="auto", default=None,
        help="continue from a checkpoint (file or run dir; without a value: OUT_DIR/ckpt.pt)",
    )
    defaults = config_dict(TrainConfig())
    for name, typ in get_type_hints(TrainConfig).items():
        # Strings are parsed by load_config so every key gets the same checks.
        p.add_argument(f"--{name}", dest=f"cfg_{name}", metavar=typ.__name__.upper(), default=argparse.SUPPRESS,
                       help=f"default: {defaults[name]!r}")


def _config(args) -> TrainConfig:
    return load_config(args.config, [f"--{k[4:]}={v}" for k, v in vars(args).items() if k.startswith("cfg_")])


def outputs(args) -> dict:
    """The run directory, locked for the run by :func:`mogen.cli.run_command` (by rank 0 only:
    the other torchrun processes write nothing there)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return {}
    return {"--out_dir": Path(_config(args).out_dir)}


def run(args) -> int:
    cfg = _config(args)
    resume = args.resume
    if resume == "auto":
        resume = Path(cfg.out_dir) / CHECKPOINT_NAME
    check_out_dir(cfg, resume)
    train(cfg, resume)
    return 0
