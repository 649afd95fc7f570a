"""``mogen augment``: render neurons into segmentation training data, cut merge candidates from it.

    mogen augment render --source DATASET_DIR --split train --out block.zarr
    mogen augment render --source samples.npz --objects 30 --out synthetic.h5
    mogen augment examples --volume block.zarr synthetic.h5 --out candidates.npz

``render`` packs fragments (real ones from a dataset made by ``mogen prepare``, or generated ones
from a samples.npz) densely into a block, renders them with the benchmark's renderer, adds an
EM-like raw image and the over-segmentation the benchmark agglomerates, and writes zarr/HDF5
that gunpowder / PyTorch Connectomics read. ``examples`` cuts merge candidates (touching
supervoxel pairs, true or false) from such volumes, as the benchmark does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mogen.augment.volume import VolumeSpec
from mogen.errors import UsageError
from mogen.outputs import atomic_path

DESCRIPTION = __doc__
_DEFAULT = VolumeSpec()


def _volume_options(p: argparse.ArgumentParser, render: bool) -> None:
    if render:
        p.add_argument("--extent", type=float, default=_DEFAULT.extent_um, help="edge of the rendered cube, µm")
        p.add_argument("--voxel-size", type=float, nargs=3, default=list(_DEFAULT.voxel_nm), metavar=("Z", "Y", "X"),
                       help="voxel size in nm, z y x")
        p.add_argument("--objects", type=int, default=_DEFAULT.objects, help="fragments packed into the block")
        p.add_argument("--max-overlap", type=float, default=_DEFAULT.max_overlap,
                       help="share of a fragment's points allowed inside fragments already placed")
    p.add_argument("--block", type=float, default=_DEFAULT.block_um, help="over-segmentation block edge, µm (0: none)")
    p.add_argument("--neck", type=float, default=_DEFAULT.neck_um, help="watershed seed height, µm (0: no neck splits)")
    if not render:
        p.add_argument("--view", type=float, default=_DEFAULT.view_um, help="radius of a candidate's view around the contact, µm")
        p.add_argument("--points", type=int, default=_DEFAULT.points, help="points per candidate view")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    r = sub.add_parser("render", help="pack fragments into a block: labels + supervoxels + EM-like raw", formatter_class=fmt)
    r.add_argument("--source", required=True, help="a dataset folder from `mogen prepare` (fragments of --split) or a samples.npz")
    r.add_argument("--out", required=True, help="output .zarr folder or .h5/.hdf5 file")
    r.add_argument("--split", default="train", help="dataset split to draw fragments from")
    _volume_options(r, render=True)
    r.add_argument("--missing-sections", type=float, default=0.0, help="probability that a z-section of raw is missing")
    r.add_argument("--noise", type=float, default=0.06, help="Gaussian noise sigma of raw (full range = 1)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--preview", default=None, help="PNG of a raw and a label section (default: next to --out)")
    r.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    e = sub.add_parser("examples", help="merge candidates (true / false contacts) cut from rendered volumes", formatter_class=fmt)
    e.add_argument("--volume", required=True, nargs="+", help="volumes written by `mogen augment render` (or the benchmark)")
    e.add_argument("--out", required=True, help="output .npz")
    _volume_options(e, render=False)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--overwrite", action="store_true")


# ----------------------------------------------------------------------------- render
EXAMPLE_KEYS = ("points", "labels", "contact_um", "volumes", "label_meaning")  # what marks an examples file as ours


def _check_out(path: str, suffixes: tuple[str, ...] | None, overwrite: bool) -> Path:
    """Refuse an --out that exists (without --overwrite) or that mogen did not write (even with it)."""
    from mogen.augment.io import check_replaceable, volume_format

    out = Path(path)
    if suffixes is None:
        volume_format(out)
    elif out.suffix.lower() not in suffixes:
        raise UsageError(f"--out {out}: expected a {'/'.join(suffixes)} file")
    if out.exists() and not overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it")
    if out.exists() and suffixes is None:
        check_replaceable(out)
    elif out.exists() and not _our_examples(out):
        raise UsageError(f"{out} is not an examples file written by `mogen augment examples` (no "
                         f"{'/'.join(EXAMPLE_KEYS)} arrays); --overwrite replaces only its own files: move it away or "
                         "choose another --out")
    return out


def _our_examples(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return path.is_file() and set(EXAMPLE_KEYS) <= set(z.files)
    except Exception:  # not an npz at all
        return False


def _objects(source: str, split: str, n: int, seed: int) -> tuple[list, float]:
    """``n`` objects from a dataset split (one fragment per cell while cells last) or a samples.npz."""
    from mogen.augment.volume import Obj

    path = Path(source)
    rng = np.random.default_rng(seed)
    if path.is_dir():
        from mogen.data import read_split
        from mogen.data.dataset import cell_of

        sp = read_split(path, split)
        if len(sp) == 0:
            raise UsageError(f"{path}: split {split!r} has no fragments")
        cells = cell_of(sp.manifest)
        rows = rng.choice(len(sp), size=n, replace=n > len(sp))
        return [Obj(np.asarray(sp.points[i], float) * sp.radius_um, cells.get(sp.neuron_id[i], sp.neuron_id[i]), "real",
                    f"{path}/{split}#{i}") for i in rows], sp.radius_um
    if path.is_file():
        from mogen.samples import read_samples

        s = read_samples(path)  # rejects NaN/inf, truncated files, wrong shapes
        rows = rng.choice(len(s), size=n, replace=n > len(s))
        return [Obj(np.asarray(s.points_um[i], float), "synthetic", "synthetic", f"{path.name}#{i}") for i in rows], s.radius_um
    raise UsageError(f"--source {source}: neither a dataset folder nor a samples .npz file")


def _render(args) -> int:
    from mogen.augment.em import em_raw
    from mogen.augment.io import write_volume
    from mogen.augment.segment import oversegment
    from mogen.augment.volume import render_volume

    out = _check_out(args.out, None, args.overwrite)
    spec = VolumeSpec(extent_um=args.extent, voxel_nm=tuple(args.voxel_size), objects=args.objects, max_overlap=args.max_overlap,
                      block_um=args.block, neck_um=args.neck).check()
    if not 0 <= args.missing_sections <= 1:
        raise UsageError(f"--missing-sections must be in [0, 1], got {args.missing_sections}")
    if not (np.isfinite(args.noise) and args.noise >= 0):
        raise UsageError(f"--noise must be >= 0, got {args.noise}")
    preview = Path(args.preview) if args.preview else out.with_name(out.stem + "_preview.png")
    if preview.suffix.lower() != ".png":
        raise UsageError(f"--preview {preview}: expected a .png file")
    objects, R = _objects(args.source, args.split, spec.objects, args.seed)
    t0 = time.time()
    vol = render_volume(objects, spec, args.seed)
    sv = oversegment(vol.labels, vol.grid.voxel_um, spec.block_um, spec.neck_um, seed=args.seed)
    raw = em_raw(vol.labels, vol.grid.voxel_nm, noise=args.noise, missing_sections=args.missing_sections, seed=args.seed)
    meta = dict(vol.metadata(), source=str(args.source), split=args.split, radius_um=R, seed=args.seed,
                mogen_version=__import__("mogen").__version__, seconds=round(time.time() - t0, 2))
    write_volume(out, vol.labels, vol.grid.voxel_nm, vol.grid.offset_nm, raw=raw, supervoxels=sv, metadata=meta,
                 overwrite=args.overwrite)
    _preview(raw, vol.labels, preview)
    placed = sum(p is not None for p in vol.placements)
    print(f"wrote {out}: {vol.labels.shape} voxels (z, y, x) at {vol.grid.voxel_nm} nm, {placed} of {len(objects)} objects "
          f"placed, {(vol.labels > 0).mean():.0%} filled, {int(sv.max())} supervoxels, {meta['seconds']:.1f} s; preview {preview}")
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
    ax[1].imshow(np.where(lab > 0, lab % 20, np.nan), cmap="tab20", interpolation="nearest", vmin=0, vmax=19)
    ax[1].set_title("labels")
    for a in ax:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- examples
def _examples(args) -> int:
    from mogen.augment.examples import ViewCutter, find_candidates
    from mogen.augment.io import read_volume, volume_format
    from mogen.augment.render import Grid
    from mogen.augment.segment import oversegment

    out = _check_out(args.out, (".npz",), args.overwrite)
    spec = VolumeSpec(block_um=args.block, neck_um=args.neck, view_um=args.view, points=args.points).check()
    for v in args.volume:
        volume_format(v)
        if not Path(v).exists():
            raise UsageError(f"--volume {v}: no such volume (write one with `mogen augment render`)")
    parts = {k: [] for k in ("points", "labels", "contact_um", "faces", "volume", "object_a", "object_b", "cell_a", "cell_b")}
    for k, path in enumerate(args.volume):
        vol = read_volume(path)
        labels, attrs = vol["labels"], vol["attrs"]
        voxel_um = tuple(v / 1000.0 for v in attrs.get("resolution", ()))
        if len(voxel_um) != 3:
            raise UsageError(f"{path}: no voxel size (resolution) recorded")
        offset = np.asarray(attrs.get("offset", (0, 0, 0)), float) / 1000.0
        grid = Grid(tuple(offset[::-1]), voxel_um, labels.shape)
        sv = vol["supervoxels"] if vol["supervoxels"] is not None else oversegment(labels, voxel_um, spec.block_um, spec.neck_um, args.seed)
        cand = find_candidates(sv, labels, grid)
        views = ViewCutter(sv, grid).views(cand.edges, cand.contact_um, spec.view_um, spec.points, seed=args.seed + k)
        cell = {o["label"]: o["cell"] for o in vol["metadata"].get("objects", [])}
        parts["points"].append(views)
        parts["labels"].append(cand.same.astype(np.int8))
        parts["contact_um"].append(cand.contact_um)
        parts["faces"].append(cand.faces)
        parts["volume"].append(np.full(len(cand), k))
        for side, col in (("a", 0), ("b", 1)):
            parts[f"object_{side}"].append(cand.objects[:, col])
            parts[f"cell_{side}"].append(np.array([cell.get(int(o), str(o)) for o in cand.objects[:, col]], dtype=str))
        print(f"{path}: {len(cand)} candidates, {cand.false_fraction:.0%} false contacts")
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    with atomic_path(out, needed=sum(a.nbytes for a in arrays.values())) as tmp:
        np.savez(tmp, **arrays, volumes=np.array([str(v) for v in args.volume]),
                 units="unit ball of radius view_um around the contact", view_um=spec.view_um,
                 label_meaning=json.dumps({"1": "true contact (one object)", "0": "false contact (two objects)"}))
    print(f"wrote {out}: {len(arrays['labels'])} candidates ({int(arrays['labels'].sum())} true) from {len(args.volume)} volume(s)")
    return 0


def outputs(args) -> dict:
    """What this run writes, locked for its duration by :func:`mogen.cli.run_command`."""
    return {"--out": Path(args.out)}


def run(args: argparse.Namespace) -> int:
    return _render(args) if args.action == "render" else _examples(args)
