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


def plot_neurite(points, path: str | Path, skeleton=None, mesh=None, title: str | None = None,
                 max_points: int = 20000, max_faces: int = 30000, size: float = 4.0) -> None:
    """Save side-by-side 3-D views of a neurite: its points, its skeleton (coloured by radius)
    and its mesh, on shared equal axes (µm). ``skeleton`` is a :class:`mogen.skeleton.Skeleton`,
    ``mesh`` a trimesh; either may be None. Large clouds and meshes are subsampled for drawing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from mogen.skeleton import Skeleton
    >>> sk = Skeleton(np.array([[0.0, 0, 0], [5, 0, 0]]), np.array([-1, 0]), np.array([0.5, 0.4]))
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "n.png"
    >>> plot_neurite(np.random.rand(100, 3) * 5, out, skeleton=sk, title="rod")
    >>> out.is_file()
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection

    pts = np.asarray(points, dtype=np.float32)
    rng = np.random.default_rng(0)
    shown = pts[rng.choice(len(pts), max_points, replace=False)] if len(pts) > max_points else pts
    panels = ["points"] + (["skeleton"] if skeleton is not None else []) + (["mesh"] if mesh is not None else [])
    fig = plt.figure(figsize=(size * len(panels), size))
    centre = (pts.max(0) + pts.min(0)) / 2
    half = max(float((pts.max(0) - pts.min(0)).max()) / 2, 1e-6)
    for k, kind in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1, projection="3d")
        if kind == "points":
            ax.scatter(shown[:, 0], shown[:, 1], shown[:, 2], s=0.2, c=shown[:, 2], cmap="viridis", linewidths=0)
            ax.set_title(f"{len(pts):,} points", fontsize=9)
        elif kind == "skeleton":
            child = np.flatnonzero(skeleton.parents >= 0)
            segs = np.stack([skeleton.nodes[child], skeleton.nodes[skeleton.parents[child]]], 1)
            r = skeleton.radii[child]
            lines = Line3DCollection(segs, linewidths=0.5 + 3 * r / max(float(r.max()), 1e-6) if len(r) else 1.0,
                                     cmap="plasma", array=r)
            ax.add_collection3d(lines)
            fig.colorbar(lines, ax=ax, shrink=0.5, label="radius (µm)")
            ax.set_title(f"skeleton: {skeleton.cable_um:.0f} µm, {skeleton.n_branch_points} branch points", fontsize=9)
        else:
            pick = np.arange(len(mesh.faces))
            if len(pick) > max_faces:
                pick = rng.choice(len(pick), max_faces, replace=False)
            tri = np.asarray(mesh.vertices)[np.asarray(mesh.faces)[pick]]
            shade = 0.35 + 0.65 * np.abs(np.asarray(mesh.face_normals)[pick] @ np.array([0.3, 0.5, 0.8]))
            ax.add_collection3d(Poly3DCollection(tri, facecolors=plt.cm.bone(np.clip(shade, 0, 1)), linewidths=0))
            ax.set_title(f"mesh: {len(mesh.faces):,} faces, {'watertight' if mesh.is_watertight else 'OPEN'}", fontsize=9)
        for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
            setter(c - half, c + half)
        ax.set_box_aspect((1, 1, 1))
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
