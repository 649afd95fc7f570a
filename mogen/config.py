"""Training configuration: one dataclass, read from a file, overridden by ``--key=value``.

Precedence: defaults < config file (JSON or TOML) < command-line overrides. Values on
the command line are parsed to the field's type (``--lr=3e-4``, ``--pair=true``,
``--model=base``). Unknown keys are errors, so a typo cannot silently do nothing.

Examples
--------
>>> cfg = load_config(overrides=["--batch_size=4", "--pair=false"])
>>> cfg.batch_size, cfg.pair
(4, False)
>>> load_config(overrides=["--lr=nan"])
Traceback (most recent call last):
...
mogen.errors.UsageError: --lr=nan: must be a finite number > 0
"""

from __future__ import annotations

import dataclasses
import json
import math
try:  # Python >= 3.11; on 3.10 only JSON config files are read
    import tomllib
except ImportError:  # pragma: no cover
    tomllib = None
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_type_hints

from mogen.errors import UsageError


@dataclass
class TrainConfig:
    # data
    data_dir: str = "runs/data"  # prepared dataset (mogen prepare); created by train.py if missing
    rotate: bool = True  # uniform random 3D rotation of each fragment
    jitter: float = 0.0  # Gaussian jitter of points (unit-ball units)
    # model
    model_type: str = "pointinfinity"  # registered backbone (mogen.model.MODELS)
    model: str = "tiny"  # preset of that backbone (e.g. tiny, base)
    model_overrides: dict = field(default_factory=dict)  # e.g. {"latents": 32}
    # flow matching
    time_sampler: str = "logit_normal"  # uniform | cosine (U-shaped) | logit_normal[:m:s] (mass mid-path, where the field is weakest)
    source: str = "moments"  # noise at t=0: gaussian N(0, noise_std^2) | moments N(centroid, noise_std^2 cov)
    noise_std: float = 1.0
    pair: bool = True  # approximate OT pairing of noise to points within each cloud
    train_points: int = 0  # train on this many random points per fragment (0: all); e.g. 1024 with a larger batch
    cond_drop: float = 0.5  # probability of dropping each condition group
    cond_drop_all: float = 0.2  # probability of dropping all conditions
    # optimisation
    batch_size: int = 8
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine schedule ends at lr * this
    schedule: str = "cosine"  # constant | cosine (over max_steps, or schedule_minutes)
    schedule_minutes: float = 0.0  # minutes over which the cosine decays (0: max_minutes); then flat
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True  # decay = min(ema_decay, (1 + step) / (10 + step))
    max_steps: int = 0  # 0: no step limit
    max_minutes: float = 5.0  # wall-clock budget; 0: no time limit
    # bookkeeping
    out_dir: str = "runs/tiny"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    threads: int = 0  # torch CPU threads; 0: leave torch's default
    ckpt_every: int = 500  # steps
    snapshot_minutes: str = ""  # e.g. "15,20": also keep ckpt_15min.pt ... when training time passes these
    log_every: int = 10  # steps
    preview_every: float = 5.0  # minutes between preview PNGs (also written at the end)
    preview_steps: int = 10  # midpoint steps for previews
    val_every: int = 200  # steps between validation losses of the raw and EMA weights (0: never)
    val_batches: int = 4  # fixed validation batches (same noise and times each time)
    eval_n: int = 0  # at the end, sample this many clouds and score realism against the val split (0: skip)
    wandb: str = "offline"  # offline | online | off
    progress: bool = True

    def validate(self) -> "TrainConfig":
        """Check every value before any work; raise :class:`mogen.errors.UsageError` naming the key."""
        from mogen.flow import SOURCES, TIME_SAMPLERS
        from mogen.model import build_model
        from mogen.runlog import WANDB_MODES
        from mogen.runtime import pick_device

        def need(ok: bool, key: str, rule: str) -> None:
            if not ok:
                raise UsageError(f"--{key}={getattr(self, key)!r}: {rule}")

        finite = lambda v: isinstance(v, (int, float)) and math.isfinite(v)  # noqa: E731
        for key in ("batch_size", "ckpt_every", "log_every", "preview_steps", "val_batches"):
            need(getattr(self, key) >= 1, key, "must be at least 1")
        for key in ("warmup_steps", "max_steps", "threads", "val_every", "eval_n"):
            need(getattr(self, key) >= 0, key, "must be >= 0")
        for key in ("max_minutes", "schedule_minutes", "preview_every", "weight_decay", "grad_clip", "jitter"):
            need(finite(getattr(self, key)) and getattr(self, key) >= 0, key, "must be a finite number >= 0")
        need(finite(self.lr) and self.lr > 0, "lr", "must be a finite number > 0")
        need(finite(self.noise_std) and self.noise_std > 0, "noise_std", "must be a finite number > 0")
        for key in ("min_lr_ratio", "cond_drop", "cond_drop_all"):
            need(finite(getattr(self, key)) and 0 <= getattr(self, key) <= 1, key, "must be in [0, 1]")
        need(finite(self.ema_decay) and 0 <= self.ema_decay < 1, "ema_decay", "must be in [0, 1)")
        need(self.schedule in ("constant", "cosine"), "schedule", "choose constant or cosine")
        need(self.time_sampler in TIME_SAMPLERS, "time_sampler", f"choose from {', '.join(TIME_SAMPLERS)}")
        need(self.source in SOURCES, "source", f"choose from {', '.join(SOURCES)}")
        need(self.wandb in WANDB_MODES, "wandb", f"choose from {', '.join(WANDB_MODES)}")
        try:
            minutes = [float(m) for m in self.snapshot_minutes.split(",") if m.strip()]
        except ValueError:
            minutes = [-1.0]
        need(all(math.isfinite(m) and m > 0 for m in minutes), "snapshot_minutes", "comma-separated positive minutes, e.g. 15,20")
        pick_device(self.device)
        build_model(self.model_type, self.model, **self.model_overrides)  # unknown type, preset or key -> UsageError
        return self


def _parse(value: str, typ):
    if typ is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if typ is dict:
        try:
            out = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"expected a JSON object such as '{{\"latents\": 32}}' ({e})") from None
        if not isinstance(out, dict):
            raise ValueError("expected a JSON object")
        return out
    return typ(value)


def load_config(path: str | Path | None = None, overrides: list[str] = (), base: dict | None = None) -> TrainConfig:
    """Build a :class:`TrainConfig` from defaults, ``base``, a JSON/TOML file and overrides."""
    types = get_type_hints(TrainConfig)
    values = dict(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"config file not found: {path}")
        if path.suffix == ".toml" and tomllib is None:
            raise UsageError(f"{path}: TOML config files need Python >= 3.11; use a JSON file")
        try:
            text = path.read_text()
            loaded = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            raise UsageError(f"{path}: not a valid {'TOML' if path.suffix == '.toml' else 'JSON'} config ({e})") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"{path}: a config file must hold a table of key = value, got {type(loaded).__name__}")
        values.update(loaded)
    for item in overrides:
        if not item.startswith("--") or "=" not in item:
            raise UsageError(f"override {item!r} must look like --key=value")
        key, value = item[2:].split("=", 1)
        key = key.replace("-", "_")
        if key not in types:
            raise UsageError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(types))}")
        try:
            values[key] = _parse(value, types[key])
        except ValueError as e:
            raise UsageError(f"bad value for --{key}: {e}") from None
    unknown = set(values) - set(types)
    if unknown:
        raise UsageError(f"unknown config keys {sorted(unknown)}{f' in {path}' if path else ''}")
    wrong = [k for k, v in values.items() if not _has_type(v, types[k])]
    if wrong:
        raise UsageError(f"config key(s) {wrong}{f' in {path}' if path else ''} have the wrong type "
                         f"(expected {', '.join(types[k].__name__ for k in wrong)})")
    return TrainConfig(**values).validate()


def _has_type(value, typ) -> bool:
    if typ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def config_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)
