"""The model registry: backbones register here by name (see :mod:`mogen.model`)."""

from __future__ import annotations

MODELS: dict[str, type] = {}
DEFAULT_MODEL = "pointinfinity"


def register(name: str, presets: dict | None = None):
    """Class decorator: make a backbone buildable by ``name``; ``presets`` maps preset names to configs."""

    def wrap(cls):
        if name in MODELS:
            raise ValueError(f"model type {name!r} is registered twice")
        cls.model_type, cls.presets = name, dict(presets or {})
        MODELS[name] = cls
        return cls

    return wrap
