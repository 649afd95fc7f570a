"""Evaluation entry points; reusable metric code lives in ``mogen.metrics``.

- ``python -m eval.generation``  realism of generated fragments vs held-out neurons, with baselines
- ``python -m eval.augment``     does synthetic data help segmentation/agglomeration
"""
