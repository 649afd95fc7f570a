"""``mogen prepare``: SWC skeletons / neuron meshes → a fragment dataset directory."""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
import time
import warnings
from pathlib import Path

from mogen.errors import DataError
from .fragments import (DEFAULT_MAX_FRAGMENTS, DEFAULT_MIN_AREA_FRAC, DEFAULT_POINTS, DEFAULT_RADIUS_UM,
                        DEFAULT_SPACING_UM, make_fragments)
from .split import SPLITS

DESCRIPTION = """\
Turn SWC skeletons and neuron meshes into a fragment dataset: crops of radius R around anchors
spaced along each neuron's cable, N surface points each (area-weighted on meshes, on the tube
of radius-carrying frusta for skeletons), in unit-ball coordinates, split train/val/test by
neuron. With no INPUT, uses the 5 navis example neurons (EM meshes with their skeletons).

INPUT may be files or folders (searched recursively for .swc .asc .h5 .obj .ply .stl .off
.glb). A mesh with a same-named .swc beside it takes anchors and neurite types from that
skeleton; a lone mesh is skeletonised (navis/skeletor). Units: SWC is µm unless --units;
mesh units come from --units, the file, or a guess from the median edge length (>20 units
→ nm); the unit used is recorded per neuron in manifest.json.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="SWC/mesh files or folders (default: navis example neurons)%(default).0s")
    p.add_argument("--out", required=True, help="output dataset directory%(default).0s")
    p.add_argument("--radius-um", type=float, default=DEFAULT_RADIUS_UM, help="crop radius R in µm")
    p.add_argument("--points", type=int, default=DEFAULT_POINTS, help="surface points per fragment")
    p.add_argument("--spacing-um", type=float, default=DEFAULT_SPACING_UM, help="one anchor every this many µm of cable")
    p.add_argument("--max-fragments-per-neuron", type=int, default=DEFAULT_MAX_FRAGMENTS,
                   help="cap per neuron (seeded random subset of anchors); 0 = no cap")
    p.add_argument("--min-area-frac", type=float, default=DEFAULT_MIN_AREA_FRAC,
                   help="skip anchors whose ball holds less surface than this fraction of πR²")
    p.add_argument("--seed", type=int, default=0, help="seed for anchors, sampling and the split")
    p.add_argument("--val", type=float, default=0.1, help="fraction of neurons for validation (floor)")
    p.add_argument("--test", type=float, default=0.1, help="fraction of neurons for test (at least 1 when >0 and ≥2 neurons)")
    p.add_argument("--units", default=None, help="units of the input coordinates, e.g. nm, um, '8 nanometer' "
                   "(default: µm for SWC, from file or guessed for meshes)%(default).0s")
    p.add_argument("--type-map", default=None, metavar="CODE=TYPE,...",
                   help="neurite types of non-standard SWC codes, e.g. '6=axon,7=dendrite' "
                        "(standard: 1 soma, 2 axon, 3/4 dendrite; others unknown)%(default).0s")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="bad file: stop (raise) or record it in manifest 'failed' and go on (skip)")
    p.add_argument("--workers", type=int, default=1, help="processes working on neurons in parallel")
    p.add_argument("--no-preview", action="store_true", help="do not write DIR/preview.png (a few fragments)")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty --out")


def _collect(inputs: list[str]) -> list[tuple[Path, str]]:
    """Files to read with their neuron ids (stems; relative paths where stems collide)."""
    from .neuron import SUFFIXES

    found: list[tuple[Path, Path]] = []  # (file, root it was found under)
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
            meshes = {f.with_suffix("") for f in files if f.suffix.lower() not in (".swc", ".asc", ".h5")}
            # An SWC beside a same-named mesh is that mesh's skeleton, not a second neuron.
            files = [f for f in files if not (f.suffix.lower() == ".swc" and f.with_suffix("") in meshes)]
            found += [(f, p) for f in files]
        elif p.is_file():
            found.append((p, p.parent))
        else:
            raise FileNotFoundError(f"input not found: {item}")
    seen, unique = set(), []
    for f, root in found:  # the same file named twice is one neuron, not two
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append((f, root))
    found = unique
    stems: dict[str, int] = {}
    for f, _ in found:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    out, used = [], set()
    for f, root in found:
        nid = base = f.stem if stems[f.stem] == 1 else f.relative_to(root).with_suffix("").as_posix()
        k = 1
        while nid in used:  # same relative path under two roots
            k += 1
            nid = f"{base}~{k}"
        used.add(nid)
        out.append((f, nid))
    return out


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"--out {out} is not empty; use --force to overwrite it")
        import shutil

        for name in ("manifest.json", "preview.png", *SPLITS, ".chunks"):
            q = out / name
            if q.is_dir():
                shutil.rmtree(q)
            elif q.exists():
                q.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _preview(out: Path, n: int = 8) -> None:
    """``DIR/preview.png``: fragments spread over the first non-empty split, to look at."""
    import numpy as np

    from .conditions import NEURITE_TYPES

    for split in SPLITS:
        pts = np.load(out / split / "points.npy", mmap_mode="r")
        if len(pts):
            break
    meta = np.load(out / split / "fragments.npz")
    idx = np.unique(np.linspace(0, len(pts) - 1, min(n, len(pts))).astype(int))
    titles = [f"{meta['neuron_id'][i][-24:]} #{i} {NEURITE_TYPES[meta['neurite_type'][i]]}" for i in idx]
    try:
        from mogen.preview import plot_clouds

        plot_clouds(pts[idx], out / "preview.png", titles=titles, title=f"{out.name}: {split} fragments (unit ball)")
    except Exception as exc:  # a missing plot must not fail a finished dataset
        print(f"warning: could not write preview.png ({type(exc).__name__}: {exc})", file=sys.stderr)


def _table(rows: list[list[str]], header: list[str]) -> str:
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip()
    return "\n".join([line(header), line(["-" * x for x in w])] + [line(r) for r in rows])


def _process(spec: tuple, settings: dict):
    """Read one input and cut it into fragments -> ``(manifest entry, fragments, error)``.

    Runs in a worker process with ``--workers``; returns errors as text instead of raising,
    so one bad file cannot take the pool down.
    """
    import numpy as np

    from .neuron import load_file, navis_example

    kind, what, nid = spec
    source = what if kind == "file" else nid
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            neuron = load_file(what, nid, settings["units"], settings["type_map"]) if kind == "file" else navis_example(what, settings["units"])
            fr = make_fragments(neuron, settings["radius"], settings["points"], settings["spacing"],
                                settings["max_fragments"], settings["seed"], settings["min_area_frac"])
        except Exception as exc:
            return None, None, str(exc) if isinstance(exc, DataError) else f"{source}: {type(exc).__name__}: {exc}"
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning) and "radius" in str(w.message)]
    entry = {"id": neuron.id, "source": neuron.source, "kind": neuron.kind, "fragments": len(fr),
             "cable_um": round(fr.cable_um, 3), "units": neuron.units, "units_note": neuron.units_note,
             "anchors": fr.n_anchors, "skipped_anchors": fr.n_skipped,
             "neurite_types": np.bincount(fr.neurite_type, minlength=4).tolist(), "warnings": notes}
    return entry, fr, None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mogen import __version__

    from .dataset import DatasetWriter, write_manifest
    from .split import split_neurons

    out = Path(args.out)
    try:
        if args.points < 1 or args.radius_um <= 0 or args.spacing_um <= 0:
            raise ValueError("--points, --radius-um and --spacing-um must be positive")
        if args.units is not None:
            from .units import to_um

            to_um(args.units)
        from .neuron import parse_type_map

        type_map = parse_type_map(args.type_map)
        jobs = _collect(args.inputs) if args.inputs else None
        _prepare_out(out, args.force)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"mogen prepare: error: {exc}", file=sys.stderr)
        return 2

    t0 = time.time()
    if jobs is None:
        print("no INPUT: using the 5 navis example neurons (meshes + skeletons)")
        specs = [("navis", i, f"navis.example_neurons:{i}") for i in range(5)]
    else:
        specs = [("file", str(f), nid) for f, nid in jobs]
    settings = dict(radius=args.radius_um, points=args.points, spacing=args.spacing_um,
                    max_fragments=args.max_fragments_per_neuron or None, seed=args.seed,
                    min_area_frac=args.min_area_frac, units=args.units, type_map=type_map)

    writer = DatasetWriter(out, args.points)
    results: dict[int, dict] = {}
    failed: list[dict] = []
    bar = tqdm(total=len(specs), desc="prepare", unit="neuron", file=sys.stderr)
    pool = ProcessPoolExecutor(args.workers) if args.workers > 1 else None
    outcomes = (pool.map(_process, specs, [settings] * len(specs)) if pool else (_process(s, settings) for s in specs))
    for k, (spec, (entry, fr, error)) in enumerate(zip(specs, outcomes)):
        bar.update(1)
        if error is not None:
            if args.on_error == "raise":
                bar.close()
                if pool:
                    pool.shutdown(cancel_futures=True)
                import shutil

                shutil.rmtree(out / ".chunks", ignore_errors=True)
                print(f"mogen prepare: error: {error}", file=sys.stderr)
                print("(use --on-error skip to record bad files in the manifest and go on)", file=sys.stderr)
                return 1
            failed.append({"file": spec[1] if spec[0] == "file" else spec[2], "error": error})
            continue
        for note in entry["warnings"]:
            tqdm.write(f"warning: {note}", file=sys.stderr)
        writer.add(entry["id"], fr)
        results[k] = entry
    bar.close()
    if pool:
        pool.shutdown()
    ok = [results[k] for k in sorted(results)]

    splits = split_neurons([n["id"] for n in ok], args.val, args.test, args.seed)
    counts = writer.finish(splits)
    split_of = {i: s for s, ids in splits.items() for i in ids}
    for n in ok:
        n["split"] = split_of[n["id"]]
    manifest = {
        "mogen_version": __version__,
        "radius_um": float(args.radius_um),
        "points_per_fragment": int(args.points),
        "units": "um",
        "seed": int(args.seed),
        "splits": {s: {"neurons": splits[s], "fragments": counts[s]} for s in SPLITS},
        "neurons": ok,
        "failed": failed,
        "settings": {"spacing_um": args.spacing_um, "max_fragments_per_neuron": args.max_fragments_per_neuron,
                     "min_area_frac": args.min_area_frac, "val": args.val, "test": args.test, "units": args.units,
                     "type_map": args.type_map,
                     "inputs": list(args.inputs) or ["navis.example_neurons"],
                     "neurite_types": ["unknown", "soma", "axon", "dendrite"]},
    }
    write_manifest(out, manifest)
    if not args.no_preview and ok:
        _preview(out)

    total = len(ok) + len(failed)
    print(f"\n{out}: {total} inputs, {len(ok)} ok, {len(failed)} failed, in {time.time() - t0:.1f} s")
    print(_table([[s, len(splits[s]), counts[s]] for s in SPLITS] + [["total", len(ok), sum(counts.values())]],
                 ["split", "neurons", "fragments"]))
    if failed:
        print(f"\nfailed ({len(failed)}; recorded in manifest.json 'failed'):")
        print(_table([[f["file"], f["error"].replace(f["file"] + ": ", "", 1)] for f in failed], ["file", "error"]))
    if not ok:
        print("mogen prepare: error: no input could be turned into fragments", file=sys.stderr)
        return 1
    return 0
