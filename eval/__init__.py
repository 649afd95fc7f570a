"""Evaluation entry points (``python -m eval.generation``); metric code is in ``mogen.metrics``."""
