"""Whole-neurite evaluation: grown neurites vs held-out real neurons, with floors and ceilings.

    python -m mogen.evaluate.whole --grown runs/grown_* --reference data/navis:test --out runs/whole

compares the neurites written by ``mogen grow`` (``neurite.swc`` in each ``--grown`` directory,
or SWC files) with pieces of real neurons on the distributions of
:mod:`mogen.metrics.neurite` (Sholl intersections, centrifugal branch order, Strahler index,
segment length, tortuosity, caliber) and per-neurite scalars (cable, branch points per 100 µm,
leaves, Sholl maximum, extent), each as Wasserstein-1 and KS against the reference set.

Sets (rows of the report):

- ``reference``: pieces of the reference neurons (``--reference DATASET[:split]``, default split
  test; the cells a dataset-trained generator never saw; or ``navis`` / SWC files or folders),
  ``--pieces`` per neuron, each cut from a random node outwards (as ``mogen grow`` grows from its
  seed) until its skeleton, after the route below, has the grown neurites' median cable
  (``--length-um`` to choose).
- ``grown``: the generated neurites.
- ``real_other`` (ceiling): pieces of OTHER real neurons of the same kind (``--ceiling``,
  default the dataset's train split), scored against the reference exactly like ``grown``.
- ``random_walk`` (floor): pieces of random-walk neurons (:mod:`mogen.augment.random_walk`).

Real and random-walk pieces go through the generated neurites' route (their tube surface
sampled at the point density of a training crop, then :func:`mogen.skeleton.skeletonize`;
``--no-resurface`` to use their skeletons as they are), so the skeletoniser's own errors are
the same on every row. Writes ``report.json`` (every number), ``report.md`` (one table) and
``sholl.png``, ``distributions.png``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

from mogen.errors import UsageError
from mogen.outputs import check_own, json_with, write_json, write_text
from mogen.metrics.neurite import DISTRIBUTIONS, SCALARS, compare_sets, cut_piece, neurite_metrics, resurface

DESCRIPTION = __doc__
DEFAULT_DENSITY = 50.0  # points per µm² when no crop area can be measured
SET_LABELS = {"grown": "grown (generator)", "real_other": "other real neurons (ceiling)",
              "random_walk": "random-walk neurons (floor)", "reference": "reference (self, split halves)"}


def _skeleton_from_swc(path):
    from mogen.data.surface import skeleton_geometry
    from mogen.data.swc import read_swc
    from mogen.skeleton import orient

    xyz, r, _, pidx = skeleton_geometry(read_swc(path))
    child = np.flatnonzero(pidx >= 0)
    return orient(xyz, np.stack([child, pidx[child]], 1), r, root=int(np.flatnonzero(pidx < 0)[0]))


def load_grown(paths: list[str]) -> tuple[list, dict]:
    """Grown skeletons (``neurite.swc`` of each grow directory, or SWC files) and the crop
    radius and points per crop their generator used (from ``grow.json`` where present)."""
    skeletons, crop = [], {}
    for p in paths:
        p = Path(p)
        swc = p / "neurite.swc" if p.is_dir() else p
        if not swc.is_file():
            raise UsageError(f"--grown {p}: no neurite.swc (a `mogen grow` output directory or an SWC file expected)")
        skeletons.append(_skeleton_from_swc(swc))
        record = p / "grow.json" if p.is_dir() else None
        if record is not None and record.is_file():
            g = json.loads(record.read_text())
            crop = {"radius_um": g["radius_um"], "points": g["points_per_crop"]}
    return skeletons, crop


def crop_density(neurons, radius_um: float, points: int, rng, per_neuron: int = 8) -> float:
    """Points per µm² of a training crop: ``points`` over the median surface area inside a ball of
    ``radius_um`` around random points on the neurons' cable (the density the generator saw)."""
    from mogen.data.fragments import Cropper, anchors_along_cable, neuron_surface
    from mogen.data.surface import skeleton_geometry

    areas = []
    for neuron in neurons:
        xyz, _, _, pidx = skeleton_geometry(neuron.skeleton)
        anchors, _ = anchors_along_cable(xyz, pidx, radius_um, rng)
        cropper = Cropper(neuron_surface(neuron, radius_um), radius_um)
        for a in anchors[rng.permutation(len(anchors))[:per_neuron]]:
            pts, area = cropper.crop(a, 64, rng)
            if pts is not None:
                areas.append(area)
    return points / float(np.median(areas)) if areas else DEFAULT_DENSITY


def reference_neurons(spec: str, default_split: str) -> tuple[list, str]:
    """Neurons (``Neuron``) named by ``spec``: ``DATASET[:split]``, ``navis`` or SWC files/folders (comma-separated)."""
    from mogen.data.neuron import load_file, navis_example, navis_examples

    if spec == "navis":
        return navis_examples(), "navis example neurons"
    root, _, split = spec.partition(":")
    if (Path(root) / "manifest.json").is_file():
        from mogen.data.dataset import read_manifest

        import navis

        manifest = read_manifest(root)
        split = split or default_split
        ids = [str(i) for i in manifest["splits"][split]["neurons"]]
        if not ids:
            raise UsageError(f"{spec}: split {split} has no neurons")
        by_id = {str(n["id"]): n for n in manifest.get("neurons", [])}
        order = {str(n.id): i for i, n in enumerate(navis.example_neurons(kind="skeleton"))}
        out = []
        for nid in ids:
            source = str(by_id.get(nid, {}).get("source", ""))
            if source.startswith("navis") and nid in order:
                out.append(navis_example(order[nid]))
            elif Path(source).is_file():
                out.append(load_file(source, nid))
            else:
                raise UsageError(f"{spec}: cannot find neuron {nid} (source {source!r})")
        return out, f"{root} split {split} ({len(out)} neurons)"
    files = []
    for part in spec.split(","):
        q = Path(part)
        files += sorted(q.glob("*.swc")) if q.is_dir() else [q]
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        raise UsageError(f"--reference {spec!r}: expected DATASET[:split], navis, or SWC files/folders; not found: {missing}")
    return [load_file(f) for f in files], f"{len(files)} SWC files"


def _matched(cut, length_um: float, prepare, tries: int = 4):
    """``prepare(cut(L))`` with L adjusted until its cable is within 10% of ``length_um``
    (skeletonising a resurfaced piece merges close twigs and loses cable, more in bushy arbors)."""
    cable = length_um
    for _ in range(tries):
        piece = prepare(cut(cable))
        ratio = length_um / max(piece.cable_um, 1e-9)
        if abs(ratio - 1) < 0.1:
            break
        cable *= min(ratio, 5.0)
    return piece


def neuron_pieces(neurons, per_neuron: int, length_um: float, rng, prepare) -> list:
    """``per_neuron`` pieces of each neuron, each grown outwards from a random non-soma node until
    its (prepared) cable is ``length_um``."""
    from mogen.data.surface import fill_radii, skeleton_geometry

    pieces = []
    for neuron in neurons:
        xyz, r, label, pidx = skeleton_geometry(neuron.skeleton)
        soma = np.asarray(neuron.node_types) == 1
        r, _ = fill_radii(r, soma, neuron.id)
        r = np.where(r > 0, r, np.median(r[r > 0]))
        starts = np.flatnonzero(~soma) if (~soma).any() else np.arange(len(xyz))
        for s in rng.choice(starts, per_neuron, replace=len(starts) < per_neuron):
            pieces.append(_matched(lambda L, s=s: cut_piece(xyz, pidx, r, int(s), L), length_um, prepare))
    return pieces


def random_walk_pieces(n: int, length_um: float, rng, prepare) -> list:
    from mogen.augment.random_walk import random_walk_skeleton

    out = []
    for _ in range(n):
        nodes, parents, radii = random_walk_skeleton(rng, n_nodes=int(6 * length_um))
        start = int(rng.integers(len(nodes)))
        out.append(_matched(lambda L: cut_piece(nodes, parents, radii, start, L), length_um, prepare))
    return out


def score_sets(sets: dict[str, list], reference: list[dict]) -> dict:
    return {name: compare_sets(m, reference) for name, m in sets.items()}


def _md_table(results: dict, counts: dict) -> str:
    cols = [*DISTRIBUTIONS, *SCALARS]
    head = "| set | n | " + " | ".join(f"{c} W1 / KS" for c in cols) + " |"
    rows = [head, "|" + "---|" * (len(cols) + 2)]
    for name, comp in results.items():
        cells = [f"{comp[c]['W1']:.3g} / {comp[c]['KS']:.2f}" for c in cols]
        rows.append(f"| {SET_LABELS.get(name, name)} | {counts[name]} | " + " | ".join(cells) + " |")
    means = ["| set | " + " | ".join(f"mean {c}" for c in cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for name, comp in results.items():
        means.append(f"| {SET_LABELS.get(name, name)} | " + " | ".join(f"{comp[c]['mean_a']:.3g}" for c in cols) + " |")
    first = next(iter(results.values()))
    means.append("| reference | " + " | ".join(f"{first[c]['mean_b']:.3g}" for c in cols) + " |")
    return "\n".join(rows) + "\n\nMeans:\n\n" + "\n".join(means) + "\n"


def plot(metrics: dict[str, list[dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ms in metrics.items():
        top = max(len(m["sholl"]) for m in ms)
        prof = np.zeros((len(ms), top))
        for i, m in enumerate(ms):
            prof[i, : len(m["sholl"])] = m["sholl"]
        step = ms[0]["sholl_radii_um"][0]
        ax.plot(step * np.arange(1, top + 1), prof.mean(0), label=f"{SET_LABELS.get(name, name)} (n={len(ms)})")
    ax.set_xlabel("distance from root (µm)")
    ax.set_ylabel("mean Sholl intersections")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "sholl.png", dpi=110)
    plt.close(fig)
    names = list(DISTRIBUTIONS)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3))
    for ax, d in zip(axes, names):
        vals = {k: np.concatenate([np.asarray(m[d], float) for m in ms]) for k, ms in metrics.items()}
        allv = np.concatenate(list(vals.values()))
        if len(allv) == 0:
            continue
        hi = np.quantile(allv, 0.98) if d != "branch_order" else allv.max() + 1
        bins = np.linspace(allv.min(), hi, 25)
        for k, v in vals.items():
            ax.hist(v, bins=bins, histtype="step", density=True, label=SET_LABELS.get(k, k))
        ax.set_title(d, fontsize=9)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "distributions.png", dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mogen.evaluate.whole", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p) -> None:
    p.add_argument("--grown", nargs="+", required=True, help="`mogen grow` output directories (or SWC files)")
    p.add_argument("--reference", required=True, help="DATASET[:split] (default split test) | navis | SWC files/folders")
    p.add_argument("--ceiling", default="", help="other real neurons of the same kind (default: the dataset's train "
                                                 "split; 'none' to skip)")
    p.add_argument("--out", required=True)
    p.add_argument("--pieces", type=int, default=8, help="pieces cut from each reference / ceiling neuron")
    p.add_argument("--random-walks", type=int, default=16, help="random-walk pieces (the floor; 0: none)")
    p.add_argument("--length-um", type=float, default=0.0, help="cable per real piece (0: the grown neurites' median)")
    p.add_argument("--density", type=float, default=0.0, help="surface points per µm² for real pieces "
                                                             "(0: that of a training crop of the reference neurons)")
    p.add_argument("--no-resurface", action="store_true", help="score real pieces on their own skeletons")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")


def outputs(args) -> dict:
    """What this run writes, locked for its duration by :func:`mogen.cli.run_command`."""
    return {"--out": Path(args.out)}


def run(args) -> int:
    if args.pieces < 1 or args.random_walks < 0 or args.length_um < 0 or args.density < 0:
        raise UsageError("--pieces must be >= 1; --random-walks, --length-um and --density >= 0")
    out = Path(args.out)
    if (out / "report.json").exists() and not args.force:
        raise UsageError(f"{out / 'report.json'} exists; pass --force to replace it")
    check_own(out / "report.json", lambda p: json_with(p, ("grown", "results", "counts")), "mogen.evaluate.whole")
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    grown, crop = load_grown(args.grown)
    ref_neurons, ref_note = reference_neurons(args.reference, "test")
    ceiling_spec = args.ceiling or (args.reference.partition(":")[0] + ":train"
                                    if (Path(args.reference.partition(":")[0]) / "manifest.json").is_file() else "none")
    ceil_neurons, ceil_note = ([], "none") if ceiling_spec == "none" else reference_neurons(ceiling_spec, "train")
    length = args.length_um or float(np.median([g.cable_um for g in grown]))
    density = args.density or crop_density(ref_neurons, crop.get("radius_um", 10.0), crop.get("points", 2048), rng)
    print(f"{len(grown)} grown neurites; reference {ref_note}; ceiling {ceil_note}; pieces of {length:.0f} µm; "
          f"resurfaced at {density:.1f} points/µm²" if not args.no_resurface else "", file=sys.stderr)

    def prepare(piece):
        return piece if args.no_resurface else resurface(piece, density, rng)

    sets = {"reference": neuron_pieces(ref_neurons, args.pieces, length, rng, prepare), "grown": grown}
    if ceil_neurons:
        sets["real_other"] = neuron_pieces(ceil_neurons, args.pieces, length, rng, prepare)
    if args.random_walks:
        sets["random_walk"] = random_walk_pieces(args.random_walks, length, rng, prepare)
    metrics = {k: [neurite_metrics(s) for s in v] for k, v in sets.items()}
    reference = metrics["reference"]
    # the reference against itself: two halves of its pieces (what sampling noise alone gives)
    half = len(reference) // 2
    results = {"reference": compare_sets(reference[:half], reference[half:])} if half else {}
    results.update({k: compare_sets(m, reference) for k, m in metrics.items() if k != "reference"})
    counts = {k: len(v) for k, v in metrics.items()}
    counts["reference"] = half
    out.mkdir(parents=True, exist_ok=True)
    record = {"created": datetime.datetime.now().isoformat(timespec="seconds"), "grown": [str(g) for g in args.grown],
              "reference": ref_note, "ceiling": ceil_note, "piece_length_um": length,
              "resurface_density_per_um2": None if args.no_resurface else density, "counts": counts,
              "results": results, "seconds": round(time.perf_counter() - t0, 1)}
    write_json(out / "report.json", record)
    write_text(out / "report.md", 
        f"# Whole-neurite report\n\nGrown: {len(grown)} neurites. Reference: {ref_note}, {args.pieces} pieces per "
        f"neuron of {length:.0f} µm cable. Ceiling: {ceil_note}. Floor: {args.random_walks} random-walk pieces. "
        f"Real and random-walk pieces {'as skeletons' if args.no_resurface else f'resurfaced at {density:.1f} points/µm² and skeletonised'}.\n"
        f"Each row: W1 (unit of the metric) / KS against the reference; lower is closer. The reference row compares "
        f"two halves of the reference pieces.\n\n" + _md_table(results, counts))
    plot(metrics, out)
    print(f"report -> {out / 'report.md'} ({record['seconds']} s)")
    return 0


def main(argv=None) -> int:
    from mogen.cli import run_command

    return run_command("python -m mogen.evaluate.whole", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
