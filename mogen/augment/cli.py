"""``mogen augment``: render neurons into segmentation training data, export merge/split examples.

    mogen augment render --source navis --out block.zarr
    mogen augment render --source DATASET_DIR --split train --objects 8 --out frags.h5
    mogen augment render --source samples.npz --objects 8 --out synthetic.zarr
    mogen augment examples --source DATASET_DIR --split test --n 2000 --out candidates.npz
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mogen.errors import UsageError

DESCRIPTION = (
    "Render neurons or fragments (real or generated) into voxel label volumes packed so that they touch, "
    "add an EM-like raw image, and write zarr/HDF5 that gunpowder / PyTorch Connectomics read; or export "
    "merge candidates (true joins / false merges) and split examples."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("render", help="label + raw volume from neurons / fragments",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--source", default="navis",
                   help="'navis' (the 5 example neurons' skeleton tubes, in their brain positions), a dataset directory "
                        "(fragments of --split), or a samples.npz from sample.py")
    r.add_argument("--out", required=True, help="output .zarr directory or .h5/.hdf5 file")
    r.add_argument("--split", default="train", help="dataset split to take fragments from")
    r.add_argument("--objects", type=int, default=6, help="fragments packed into one volume (dataset/samples sources)")
    r.add_argument("--voxel-size", type=float, nargs=3, default=[80.0, 40.0, 40.0], metavar=("Z", "Y", "X"),
                   help="voxel size in nm, z y x (EM-like anisotropy; 8x8x40 nm is possible but costs 50x the voxels)")
    r.add_argument("--extent", type=float, default=8.0, help="edge of the rendered cube in µm")
    r.add_argument("--spread", type=float, default=1.5, help="fragment anchors are placed within ±spread µm of the centre")
    r.add_argument("--closing", type=float, default=None, help="closing radius in µm (default: from point spacing)")
    r.add_argument("--missing-sections", type=float, default=0.0, help="probability that a z-section is missing in raw")
    r.add_argument("--noise", type=float, default=0.06, help="Gaussian noise sigma of raw (full range = 1)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--preview", default=None, help="PNG with a raw and a label section (default: next to --out)")
    r.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    e = sub.add_parser("examples", help="merge candidates and split examples as an npz",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("--source", required=True, help="dataset directory or samples.npz")
    e.add_argument("--split", default="train")
    e.add_argument("--n", type=int, default=1000, help="merge candidates (half true joins, half false merges)")
    e.add_argument("--points", type=int, default=512, help="points per candidate")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", required=True, help="output .npz")
    e.add_argument("--overwrite", action="store_true")


# ----------------------------------------------------------------------------- sources
def _fragments(source: str, split: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(fragments in unit-ball coordinates [F, N, 3], neuron ids [F], R µm) from a dataset or samples.npz."""
    path = Path(source)
    if path.is_dir():
        from mogen.data import read_manifest

        manifest = read_manifest(path)
        pts = np.load(path / split / "points.npy", mmap_mode="r")
        ids = np.load(path / split / "fragments.npz")["neuron_id"].astype(str)
        if len(pts) == 0:
            raise UsageError(f"{path}: split {split!r} has no fragments")
        return pts, ids, float(manifest["radius_um"])
    if path.suffix == ".npz" and path.is_file():
        from mogen.samples import read_samples

        s = read_samples(path)
        return s.points_unit, np.array([f"sample{i}" for i in range(len(s))]), s.radius_um
    raise UsageError(f"{source}: neither 'navis', a dataset directory nor a samples .npz file")


def _navis_block(args) -> tuple[np.ndarray, object, dict]:
    """The navis neurons' skeleton tubes (µm, with radii) in a cube where most of them meet.

    The five DA1 projection neurons fasciculate, so in their brain positions they touch as in
    neuropil. Skeleton tubes give exact solids; the navis meshes are coarse and, cut by the
    block, open, so their thick parts would not fill.
    """
    from scipy.spatial import cKDTree

    from mogen.augment.render import Grid, pack_labels, skeleton_to_solid
    from mogen.data import navis_examples

    neurons = navis_examples()
    nodes = [n.skeleton.nodes[["x", "y", "z"]].to_numpy(float) for n in neurons]
    # centre: the node of neuron 0 with the most other neurons within 2 µm
    trees = [cKDTree(x) for x in nodes[1:]]
    near = sum((t.query(nodes[0], distance_upper_bound=2.0)[0] < np.inf).astype(int) for t in trees)
    centre = nodes[0][int(np.argmax(near))]
    grid = Grid.around(centre, args.extent, args.voxel_size)
    solids, ids = [], []
    for n, xyz in zip(neurons, nodes):
        tab = n.skeleton.nodes
        row = {nid: k for k, nid in enumerate(tab["node_id"].to_numpy())}
        parents = np.array([row.get(p, -1) for p in tab["parent_id"].to_numpy()])
        radii = tab["radius"].to_numpy(float)
        solid = skeleton_to_solid(xyz, parents, radii, grid)
        if solid.any():
            solids.append(solid)
            ids.append(n.id)
    if not solids:
        raise UsageError("no navis neuron reaches the rendered block")
    labels = pack_labels(solids, grid.voxel_um)
    return labels, grid, dict(objects=ids, centre_um=centre.tolist(), solids="navis skeleton tubes (µm, node radii)")


def _fragment_block(args) -> tuple[np.ndarray, object, dict]:
    from mogen.augment.render import pack_fragments

    pts, ids, R = _fragments(args.source, args.split)
    rng = np.random.default_rng(args.seed)
    # one fragment per neuron as long as there are neurons left, so objects differ
    order = rng.permutation(len(pts))
    pick, seen = [], set()
    for i in order:
        if ids[i] not in seen or len(seen) >= len(set(ids)):
            pick.append(int(i))
            seen.add(ids[i])
        if len(pick) == args.objects:
            break
    frags = [np.asarray(pts[i], float) * R for i in pick]
    labels, grid, offsets = pack_fragments(frags, args.voxel_size, args.extent, args.spread, args.seed, args.closing)
    return labels, grid, dict(objects=[str(ids[i]) for i in pick], fragment_rows=pick, offsets_um=offsets.tolist(), radius_um=R)


# ----------------------------------------------------------------------------- actions
def _render(args) -> int:
    from mogen.augment.em import em_raw
    from mogen.augment.io import write_volume
    from mogen.augment.render import touching_pairs

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it")
    t0 = time.time()
    labels, grid, info = _navis_block(args) if args.source == "navis" else _fragment_block(args)
    t_labels = time.time() - t0
    raw = em_raw(labels, grid.voxel_nm, noise=args.noise, missing_sections=args.missing_sections, seed=args.seed)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    meta = dict(info, source=str(args.source), mogen_version=__import__("mogen").__version__,
                voxel_size_nm=list(grid.voxel_nm), shape=list(labels.shape), label_ids=ids.tolist(),
                voxels_per_label=counts.tolist(), touching_pairs=sorted(touching_pairs(labels)),
                seconds=dict(labels=round(t_labels, 2), total=round(time.time() - t0, 2)))
    write_volume(out, raw, labels, grid.voxel_nm, grid.offset_nm, metadata=meta, overwrite=args.overwrite)
    preview = Path(args.preview) if args.preview else out.with_name(out.stem + "_preview.png")
    _preview(raw, labels, preview)
    print(f"wrote {out}: {labels.shape} voxels (z, y, x) at {grid.voxel_nm} nm, {len(ids)} objects, "
          f"{len(meta['touching_pairs'])} touching pairs, {meta['seconds']['total']:.1f} s; preview {preview}")
    return 0


def _preview(raw: np.ndarray, labels: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = labels.shape[0] // 2
    fig, ax = plt.subplots(1, 2, figsize=(9, 4.5))
    ax[0].imshow(raw[z], cmap="gray", vmin=0, vmax=255)
    ax[0].set_title(f"raw, section z={z}")
    lab = labels[z].astype(float)
    ax[1].imshow(np.where(lab > 0, lab, np.nan), cmap="tab20", interpolation="nearest")
    ax[1].set_title("labels")
    for a in ax:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _examples(args) -> int:
    from mogen.augment.examples import build_candidates, split_example

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it")
    pts, ids, R = _fragments(args.source, args.split)
    if len(set(ids)) < 2:
        raise UsageError(f"{args.source}: split {args.split!r} holds fragments of one neuron only ({ids[0]}); "
                         "false merges need two neurons (try --split train)")
    cand = build_candidates(pts, ids, args.n, n_points=args.points, seed=args.seed, progress=True)
    rng = np.random.default_rng(args.seed)
    splits = []
    for i in rng.choice(len(pts), size=args.n // 2):
        half = split_example(np.asarray(pts[i], float), rng)
        splits.append(half[rng.choice(len(half), size=args.points, replace=len(half) < args.points)])
    np.savez(out, points=cand.points, labels=cand.labels, contact_distance=cand.contact_distance,
             neuron_a=cand.neuron_a, neuron_b=cand.neuron_b, split_points=np.stack(splits).astype(np.float32),
             units="unit", radius_um=R, source=str(args.source), split=args.split, seed=args.seed,
             label_meaning=json.dumps({"1": "true join (one neuron)", "0": "false merge (two neurons)"}))
    print(f"wrote {out}: {len(cand)} merge candidates ({int(cand.labels.sum())} true joins), {len(splits)} split examples")
    return 0


def run(args: argparse.Namespace) -> int:
    return _render(args) if args.action == "render" else _examples(args)
