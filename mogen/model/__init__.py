"""Velocity networks, by name: a registry in the style of DiT's ``models.py``.

A checkpoint records ``model_type`` (the registered name) and ``model_config`` (the
backbone's config dataclass as a dict), so :func:`build_model` rebuilds any registered
backbone without the caller knowing its class. A new backbone is one new module here with a
class decorated ``@register("name", presets={...})`` and one import line below.

Every backbone is an ``nn.Module`` with ``config`` (a dataclass with ``k``,
``cond_dim`` and ``cond_groups``) and ``forward(x, t, cond, cond_mask, knn=None)``.

Examples
--------
>>> net = build_model("pointinfinity", "tiny")
>>> sorted(MODELS), sorted(MODELS["pointinfinity"].presets)
(['pointinfinity'], ['base', 'tiny'])
>>> net2 = build_model("pointinfinity", dataclasses.asdict(net.config))
>>> count_parameters(net2) == count_parameters(net)
True
"""

from __future__ import annotations

import dataclasses

from torch import nn

from mogen.errors import UsageError
from mogen.model.registry import DEFAULT_MODEL, MODELS, register  # noqa: F401 (re-exported)


def build_model(model_type: str, config: str | dict | object = "tiny", **overrides) -> nn.Module:
    """A backbone of a registered type from a preset name, a config dict or a config object."""
    if model_type not in MODELS:
        raise UsageError(f"unknown model type {model_type!r}; registered: {', '.join(sorted(MODELS))}")
    cls = MODELS[model_type]
    if isinstance(config, str):
        if config not in cls.presets:
            raise UsageError(f"unknown {model_type} preset {config!r}; choose from {', '.join(sorted(cls.presets))}")
        config = cls.presets[config]
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted((set(config) | set(overrides)) - fields)
    if unknown:
        raise UsageError(f"{model_type} has no config keys {unknown}; it has {sorted(fields)}")
    return cls(cls.Config(**{**config, **overrides}))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Backbones register themselves on import: one line per backbone.
from mogen.model import pointinfinity  # noqa: E402,F401
