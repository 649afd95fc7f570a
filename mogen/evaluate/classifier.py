"""The shape-plausibility classifier of the reconstruction benchmark: is this candidate object one neuron?

A DGCNN-style (Wang et al. 2019) torch-geometric network on the cloud in its moment frame
(:class:`mogen.evaluate.pointnet.PointCloudNet`, shared with the two-sample critic): one logit,
high = one neuron, i.e. accept the merge. Candidates are ``(points, labels)`` pools of equal-sized
clouds [n, P, 3] (or sequences of [P_i, 3] clouds of any sizes); each cloud's kNN graph is built
once with :func:`mogen.knn.knn_graph`, not once per training step.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> pts = (rng.normal(size=(16, 64, 3)) * 0.3).astype(np.float32)
>>> model = train_classifier((pts, np.arange(16) % 2), steps=2, batch_size=8)
>>> score(model, pts).shape
(16,)
"""

from __future__ import annotations

import numpy as np
import torch

from mogen.evaluate.pointnet import PointCloudNet, canonical_frame, cloud_graphs, predict, train_binary

__all__ = ["PlausibilityNet", "canonical_frame", "score", "train_classifier"]

# The merge classifier is the shared point-cloud network; the name says what it judges here.
PlausibilityNet = PointCloudNet


def train_classifier(
    real: tuple,
    extra: tuple | None = None,
    share: float = 0.0,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    model_kwargs: dict | None = None,
    progress: bool = False,
) -> PlausibilityNet:
    """Train a ``PlausibilityNet`` on merge candidates.

    ``real`` and ``extra`` are ``(points [n, P, 3] or a list of [P_i, 3], labels [n])`` pools.
    Each batch holds ``round(share * batch_size)`` examples from ``extra`` and the rest from
    ``real``, so every arm sees the same number of examples, steps and schedule (AdamW, cosine
    decay). The seed fixes initialisation and batch order. The network sees each cloud in its
    canonical frame, so no rotation augmentation is needed: rotations change nothing.
    """
    torch.manual_seed(seed)
    model = PlausibilityNet(**(model_kwargs or {}))
    n_extra = int(round(share * batch_size)) if extra is not None else 0
    sources = [cloud_graphs(real[0], model.k, real[1])]
    if n_extra:
        sources.append(cloud_graphs(extra[0], model.k, extra[1]))
    return train_binary(model, sources, [batch_size - n_extra, n_extra], steps, lr=lr, seed=seed,
                        progress=progress, desc="train classifier")


def score(model: PlausibilityNet, points, batch_size: int = 128) -> np.ndarray:
    """Probability [n] that each candidate (points [n, P, 3] or a list of [P_i, 3]) is one neuron."""
    return predict(model, cloud_graphs(points, model.k), batch_size)
