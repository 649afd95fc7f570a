"""The training loop: flow matching on a fragment dataset, one process or many (torchrun).

What a run writes into ``cfg.out_dir`` (rank 0 only):

- ``ckpt.pt``        checkpoint every ``ckpt_every`` steps and at exit (Ctrl-C included)
- ``config.json``    the resolved configuration
- ``log.csv``        step, seconds, loss, lr, grad norm, points/s (``log.json``: same, at exit)
- ``loss.png``       the loss curve (at exit)
- ``preview.png``    a few samples of the EMA model (every ``preview_every`` minutes, at exit)

Reproducibility: every random draw of step ``s`` (noise, times, condition masks) comes
from a generator seeded by ``(seed, rank, s)``, and the batches of epoch ``e`` come from
a loader seeded by ``(seed, rank, e)``, so ``resume`` continues exactly where the
interrupted run was (same losses as an uninterrupted run with a step-based schedule).

Multi-GPU / multi-node: launch the same script with ``torchrun``; each rank sees a
different shuffle of the data, gradients are averaged by DistributedDataParallel.

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
import json
import math
import os
import shutil
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mogen import __version__
from mogen.checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mogen.config import TrainConfig, config_dict, load_config
from mogen.flow import drop_conditions, flow_matching_loss
from mogen.model import build_model, count_parameters
from mogen.runtime import pick_device, setup_distributed

DEFAULT_DATA = "runs/data"




def ensure_data(data_dir: str | Path) -> Path:
    """Return the dataset dir, preparing the default navis data there if it is missing."""
    data_dir = Path(data_dir)
    if (data_dir / "manifest.json").is_file():
        return data_dir
    if data_dir.exists() and any(data_dir.iterdir()):
        raise FileNotFoundError(f"{data_dir} exists but holds no manifest.json: not a prepared dataset")
    print(f"No dataset at {data_dir}: preparing the default navis neurons there (mogen prepare) ...", flush=True)
    from mogen.cli import main as mogen_main

    rc = mogen_main(["prepare", "--out", str(data_dir)])
    if rc or not (data_dir / "manifest.json").is_file():
        raise RuntimeError(f"mogen prepare --out {data_dir} failed (exit code {rc})")
    return data_dir


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, then constant or cosine decay over ``progress`` in [0, 1]."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule != "cosine":
        raise ValueError(f"unknown schedule {cfg.schedule!r}; choose constant or cosine")
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
        raise ValueError(f"{data_dir}/train has fewer fragments than one batch ({cfg.batch_size})")
    epoch, skip = divmod(start_step, per_epoch)
    while True:
        yield from itertools.islice(loader(epoch), skip, None)
        epoch, skip = epoch + 1, 0


def step_generator(cfg: TrainConfig, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((cfg.seed * 1_000_003 + rank) * 10_000_019 + step)


def training_conditions(data_dir: Path, chunk: int = 256) -> torch.Tensor:
    """Condition vectors [F, 14] of all training fragments (unrotated), kept in checkpoints
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


def train(cfg: TrainConfig, resume: str | Path | None = None) -> Path:
    """Train a velocity network; returns the checkpoint path (see module docstring)."""
    device = pick_device(cfg.device)
    rank, world = setup_distributed(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.out_dir)
    data_dir = ensure_data(cfg.data_dir) if rank == 0 else Path(cfg.data_dir)
    if world > 1:
        dist.barrier()
    from mogen.data import manifest_hash

    manifest = json.loads((data_dir / "manifest.json").read_text())
    data_info = {
        "dir": str(data_dir.resolve()),
        "manifest_hash": manifest_hash(data_dir),
        "train_neurons": list(manifest["splits"]["train"]["neurons"]),
        "radius_um": manifest["radius_um"],
        "points_per_fragment": manifest["points_per_fragment"],
    }

    cond_bank = training_conditions(data_dir)
    torch.manual_seed(cfg.seed)
    model = build_model(
        cfg.model_type, cfg.model, **{"reference_points": manifest["points_per_fragment"], **cfg.model_overrides}
    ).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    step, spent = 0, 0.0
    if resume:
        state = load_checkpoint(resume, map_location=device)
        if state["data"]["manifest_hash"] != data_info["manifest_hash"]:
            raise ValueError(f"{state['path']} was trained on another dataset (manifest hash differs from {data_dir})")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step, spent = state["step"], state.get("train_seconds", 0.0)
        set_rng_state(state["rng"])
    net = DistributedDataParallel(model) if world > 1 else model
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    )

    writer = rank == 0
    log_rows: list[dict] = []
    if writer:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(config_dict(cfg), indent=2))
        log_path = out_dir / "log.csv"
        if resume and log_path.is_file():  # keep the rows up to the resumed step
            with log_path.open() as f:
                log_rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        print(
            f"mogen train: {cfg.model} ({count_parameters(model) / 1e6:.2f}M parameters) on {device}"
            f"{f' x{world}' if world > 1 else ''}, data {data_dir} "
            f"({manifest['splits']['train']['fragments']} train fragments), run dir {out_dir}",
            flush=True,
        )
    csv_log = _CsvLog(out_dir / "log.csv", log_rows) if writer else None
    wandb_run = _start_wandb(cfg, out_dir) if writer else None

    def checkpoint():
        save_checkpoint(
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "config": config_dict(cfg),
                "model_type": model.model_type,
                "model_config": asdict(model.config),
                "step": step,
                "train_seconds": spent,
                "rng": rng_state(),
                "data": data_info,
                "cond_bank": cond_bank,
                "mogen_version": __version__,
            },
            out_dir / CHECKPOINT_NAME,
        )

    budget = cfg.max_minutes * 60
    decay_budget = 60 * (cfg.schedule_minutes or cfg.max_minutes)
    snapshots = sorted(float(m) for m in cfg.snapshot_minutes.split(",") if m.strip())
    snapshots = [m for m in snapshots if 60 * m > spent]
    n_points = manifest["points_per_fragment"]
    groups = model.config.cond_groups
    data = batches(cfg, data_dir, rank, step)
    bar = _progress(cfg, writer, step)
    t_start = time.perf_counter() - spent
    last_preview = time.perf_counter()
    ckpt_path = out_dir / CHECKPOINT_NAME
    stop = _StopOnInterrupt()
    try:
        while True:
            spent = time.perf_counter() - t_start
            if (cfg.max_steps and step >= cfg.max_steps) or (budget and spent >= budget):
                break
            if stop.requested:
                if writer:
                    print(f"\ninterrupted at step {step}; saving checkpoint (resume with --resume)", flush=True)
                break
            progress = max(step / cfg.max_steps if cfg.max_steps else 0.0, spent / decay_budget if decay_budget else 0.0)
            if writer and snapshots and spent >= 60 * snapshots[0]:
                checkpoint()
                snap = out_dir / f"ckpt_{snapshots.pop(0):g}min.pt"
                shutil.copyfile(ckpt_path, snap.with_suffix(".tmp"))
                os.replace(snap.with_suffix(".tmp"), snap)  # atomic: others may be waiting for it
            lr = lr_at(cfg, step, progress)
            for group in opt.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            batch = next(data)
            g = step_generator(cfg, rank, step)
            x1 = batch["points"].to(device)
            cond = batch["cond"].to(device)
            mask = drop_conditions(len(x1), groups, cfg.cond_drop, cfg.cond_drop_all, g).to(device)
            with autocast:
                loss = flow_matching_loss(
                    net, x1, cond, mask, g, cfg.time_sampler, cfg.noise_std, cfg.pair, source=cfg.source,
                    points=cfg.train_points,
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
            opt.step()
            update_ema(ema, model, ema_decay_at(cfg, step))
            step += 1
            dt = time.perf_counter() - t0
            if not writer:
                continue
            loss_value = loss.item()
            pts_per_s = world * x1.shape[0] * x1.shape[1] / dt
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", pts_s=f"{pts_per_s:,.0f}")
            if step % cfg.log_every == 0 or step == 1:
                row = {
                    "step": step, "seconds": round(time.perf_counter() - t_start, 2), "loss": loss_value,
                    "lr": lr, "grad_norm": float(grad_norm), "points_per_s": round(pts_per_s),
                }
                log_rows.append(row)
                csv_log.append(row)
                if wandb_run is not None:
                    wandb_run.log(row, step=step)
            if step % cfg.ckpt_every == 0:
                spent = time.perf_counter() - t_start
                checkpoint()
            if cfg.preview_every and time.perf_counter() - last_preview > 60 * cfg.preview_every:
                preview(ema, out_dir / "preview.png", cfg, cond_bank, points=n_points, steps=cfg.preview_steps, title=f"step {step}")
                last_preview = time.perf_counter()
    finally:
        stop.restore()
        spent = time.perf_counter() - t_start
        bar.close()
        if writer:
            checkpoint()
            _write_logs(out_dir, log_rows)
        if wandb_run is not None:
            wandb_run.finish()
    if writer:
        if cfg.preview_every:
            preview(ema, out_dir / "preview.png", cfg, cond_bank, points=n_points, steps=cfg.preview_steps, title=f"step {step}")
        print(f"checkpoint: {ckpt_path} (step {step}, {spent / 60:.1f} min); log: {out_dir / 'log.csv'}", flush=True)
    if world > 1:
        dist.barrier()
    return ckpt_path


class _StopOnInterrupt:
    """Turn the first Ctrl-C into a request to stop at the next step boundary.

    A KeyboardInterrupt in the middle of an optimiser step would leave weights and step
    counter out of step in the final checkpoint. The second Ctrl-C interrupts at once.
    """

    def __init__(self):
        self.requested = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


def _progress(cfg: TrainConfig, writer: bool, step: int):
    from tqdm.auto import tqdm

    return tqdm(
        total=cfg.max_steps or None, initial=step, disable=not (writer and cfg.progress),
        desc="train", unit="step", dynamic_ncols=True,
    )


def _start_wandb(cfg: TrainConfig, out_dir: Path):
    if cfg.wandb == "off":
        return None
    try:
        import wandb
    except ImportError:
        print("wandb not installed: logging to log.csv only (install mogen[wandb] or pass --wandb=off)")
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        return wandb.init(project="mogen", dir=str(out_dir), mode=cfg.wandb, config=config_dict(cfg))
    except Exception as e:  # logging must never stop training
        print(f"wandb failed to start ({e}); logging to log.csv only")
        return None


class _CsvLog:
    """``log.csv`` written row by row, so a crashed or running job can be inspected."""

    def __init__(self, path: Path, rows: list[dict]):
        self.path, self.fields = path, None
        if rows:  # resumed: keep the rows up to the resumed step
            self.fields = list(rows[0])
            with path.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.fields)
                w.writeheader()
                w.writerows(rows)

    def append(self, row: dict) -> None:
        new = self.fields is None
        self.fields = self.fields or list(row)
        with self.path.open("w" if new else "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            if new:
                w.writeheader()
            w.writerow(row)


def _write_logs(out_dir: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with (out_dir / "log.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out_dir / "log.json").write_text(json.dumps(rows))
    plot_loss(out_dir / "log.csv", out_dir / "loss.png")


def plot_loss(log_csv: str | Path, path: str | Path) -> None:
    """Plot the loss column of a ``log.csv`` (and a running mean) against minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(log_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    minutes = np.array([float(r["seconds"]) for r in rows]) / 60
    loss = np.array([float(r["loss"]) for r in rows])
    window = max(1, len(loss) // 20)
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(minutes, loss, lw=0.5, alpha=0.5, label="loss")
    ax.plot(minutes[window - 1 :], smooth, lw=1.5, label=f"running mean ({window})")
    ax.set_xlabel("minutes")
    ax.set_ylabel("flow-matching MSE")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"{Path(log_csv).parent.name}: {rows[-1]['step']} steps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


DESCRIPTION = (
    "train the flow-matching generator. With no arguments: prepare the default navis data into "
    "runs/data if needed and train the tiny model for a few minutes on this machine. Every config "
    "key can be set as --key=value (or in a JSON/TOML --config file)."
)


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


def run(args) -> int:
    overrides = [
        f"--{k[4:]}={v}" for k, v in vars(args).items() if k.startswith("cfg_")
    ]
    try:
        cfg = load_config(args.config, overrides)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    resume = args.resume
    if resume == "auto":
        resume = Path(cfg.out_dir) / CHECKPOINT_NAME
    if resume is None and (Path(cfg.out_dir) / CHECKPOINT_NAME).exists():
        raise SystemExit(
            f"error: {Path(cfg.out_dir) / CHECKPOINT_NAME} exists; pass --resume to continue it "
            f"or --out_dir=NEW_DIR to start a new run"
        )
    train(cfg, resume)
    return 0
