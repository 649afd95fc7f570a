"""Training configuration: one dataclass, read from a file, overridden by ``--key=value``.

Precedence: defaults < config file (JSON or TOML) < command-line overrides. Values on
the command line are parsed to the field's type (``--lr=3e-4``, ``--pair=true``,
``--model=base``). Unknown keys are errors, so a typo cannot silently do nothing.

Examples
--------
>>> cfg = load_config(overrides=["--batch_size=4", "--pair=false"])
>>> cfg.batch_size, cfg.pair
(4, False)
"""

from __future__ import annotations

import dataclasses
import json
try:  # Python >= 3.11; on 3.10 only JSON config files are read
    import tomllib
except ImportError:  # pragma: no cover
    tomllib = None
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_type_hints


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
    time_sampler: str = "uniform"  # uniform | cosine | logit_normal
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
    wandb: str = "offline"  # offline | online | off
    progress: bool = True


def _parse(value: str, typ):
    if typ is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if typ is dict:
        return json.loads(value)
    return typ(value)


def load_config(path: str | Path | None = None, overrides: list[str] = (), base: dict | None = None) -> TrainConfig:
    """Build a :class:`TrainConfig` from defaults, ``base``, a JSON/TOML file and overrides."""
    types = get_type_hints(TrainConfig)
    values = dict(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text()
        if path.suffix == ".toml" and tomllib is None:
            raise SystemExit(f"{path}: TOML config files need Python >= 3.11; use a JSON file")
        values.update(tomllib.loads(text) if path.suffix == ".toml" else json.loads(text))
    for item in overrides:
        if not item.startswith("--") or "=" not in item:
            raise ValueError(f"override {item!r} must look like --key=value")
        key, value = item[2:].split("=", 1)
        key = key.replace("-", "_")
        if key not in types:
            raise ValueError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(types))}")
        try:
            values[key] = _parse(value, types[key])
        except ValueError as e:
            raise ValueError(f"bad value for --{key}: {e}") from None
    unknown = set(values) - set(types)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}{f' in {path}' if path else ''}")
    return TrainConfig(**values)


def config_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)
