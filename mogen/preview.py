"""PNG previews of point clouds: a grid of 3-D scatter plots, one per cloud.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "grid.png"
>>> plot_clouds(np.random.rand(4, 256, 3), out, title="random")
>>> out.is_file()
True
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def plot_clouds(points, path: str | Path, titles=None, title: str | None = None, cols: int = 4, size: float = 3.0) -> None:
    """Save a grid of 3-D scatter plots of ``points`` [n, N, 3] to ``path``.

    Each panel uses equal axis ranges around its cloud, so shapes are not distorted.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = np.asarray(points.detach().cpu() if hasattr(points, "detach") else points, dtype=np.float32)
    n = len(pts)
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig = plt.figure(figsize=(size * cols, size * rows))
    for i, p in enumerate(pts):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=0.3, c=p[:, 2], cmap="viridis", linewidths=0)
        centre = (p.max(0) + p.min(0)) / 2
        half = max(float((p.max(0) - p.min(0)).max()) / 2, 1e-6)
        for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
            setter(c - half, c + half)
        ax.set_box_aspect((1, 1, 1))
        ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
