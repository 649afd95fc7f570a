"""``mogen prepare``: SWC skeletons / neuron meshes → a fragment dataset directory."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mogen.errors import DataError, DatasetError, OutputError, UsageError
from mogen.outputs import is_write_error, write_failure
from mogen.runtime import available_cores  # noqa: F401  (also imported from here by callers)
from .fragments import (DEFAULT_MAX_FRAGMENTS, DEFAULT_MIN_AREA_FRAC, DEFAULT_POINTS, DEFAULT_RADIUS_UM,
                        DEFAULT_SPACING_UM, make_fragments)
from .neuron import collect_inputs
from .split import SPLITS, check_fractions

DESCRIPTION = """\
Turn SWC skeletons and neuron meshes into a fragment dataset: crops of radius R around anchors
spaced along each neuron's cable, N surface points each (area-weighted on meshes, on the tube
of radius-carrying frusta for skeletons), in unit-ball coordinates, split train/val/test by
cell (files that hold the same cell stay together; see mogen.data.cells). With no INPUT, uses
the 5 navis example neurons (EM meshes with their skeletons).

INPUT may be files or folders (searched recursively for .swc .asc .h5 .obj .ply .stl .off
.glb). A mesh with a same-named .swc beside it takes anchors and neurite types from that
skeleton; a lone mesh is skeletonised (navis/skeletor). Units: SWC is µm unless --units;
mesh units come from --units, the file, or a guess from the median edge length (>20 units
→ nm); the unit used is recorded per neuron in manifest.json.

Every argument is checked before any input is read. The dataset is written into a folder
beside --out (.NAME.prepare-partial-PID) and moved into place only when complete, so a
failed or interrupted run leaves an earlier dataset in --out as it was; --force replaces
only what an earlier `mogen prepare` wrote there (manifest.json, preview.png, train/ val/
test/), never other files, and never when --out is, contains or is inside an input.
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
    p.add_argument("--val", type=float, default=0.1, help="fraction of cells for validation (floor; at least 1 when >0 and ≥3 cells)")
    p.add_argument("--test", type=float, default=0.1, help="fraction of cells for test (at least 1 when >0 and ≥2 cells)")
    p.add_argument("--units", default=None, help="units of the input coordinates, e.g. nm, um, '8 nanometer' "
                   "(default: µm for SWC, from file or guessed for meshes)%(default).0s")
    p.add_argument("--type-map", default=None, metavar="CODE=TYPE,...",
                   help="neurite types of non-standard SWC codes, e.g. '6=axon,7=dendrite' "
                        "(standard: 1 soma, 2 axon, 3/4 dendrite; others unknown)%(default).0s")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="bad file: stop (raise) or record it in manifest 'failed' and go on (skip)")
    p.add_argument("--workers", type=int, default=available_cores(),
                   help="processes cutting neurons in parallel (default: the cores this process may use, here %(default)s)")
    p.add_argument("--no-preview", action="store_true", help="do not write DIR/preview.png (a few fragments)")
    p.add_argument("--force", action="store_true", help="replace the dataset an earlier `mogen prepare` wrote in --out")


# Argument ranges: beyond them no neuron dataset makes sense, and the work or memory explodes.
RADIUS_RANGE_UM = (0.01, 1e4)
SPACING_RANGE_UM = (1e-3, 1e7)
POINTS_RANGE = (1, 1_000_000)
MIN_AREA_FRAC_RANGE = (0.0, 4.0)  # 4πR² is the area of the ball's own sphere
OUTPUTS = ("manifest.json", "preview.png", *SPLITS)  # what prepare writes into --out
SPLIT_FILES = ("points.npy", "fragments.npz")  # what it writes into each split folder
PARTIAL = ".prepare-partial-"  # working folder beside --out: .NAME.prepare-partial-PID


def _number(flag: str, value, lo: float, hi: float, unit: str = "", integer: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise UsageError(f"{flag} must be {kind}{' of ' + unit if unit else ''} in [{lo:g}, {hi:g}], got {value!r}")


def check_args(args: argparse.Namespace) -> dict:
    """Every argument, before any input is read; raises :class:`UsageError`. Returns the settings."""
    _number("--radius-um", args.radius_um, *RADIUS_RANGE_UM, unit="µm")
    _number("--spacing-um", args.spacing_um, *SPACING_RANGE_UM, unit="µm")
    _number("--points", args.points, *POINTS_RANGE, integer=True)
    _number("--max-fragments-per-neuron", args.max_fragments_per_neuron, 0, 10**9, integer=True)
    _number("--min-area-frac", args.min_area_frac, *MIN_AREA_FRAC_RANGE)
    _number("--seed", args.seed, 0, 2**63 - 1, integer=True)
    _number("--workers", args.workers, 1, 1024, integer=True)
    check_fractions(args.val, args.test)
    if args.units is not None:
        from .units import to_um

        try:
            to_um(args.units)
        except ValueError as exc:
            raise UsageError(f"--units: {exc}") from None
    from .neuron import parse_type_map

    try:
        type_map = parse_type_map(args.type_map)
    except ValueError as exc:
        raise UsageError(f"--type-map: {exc}") from None
    return dict(radius=args.radius_um, points=args.points, spacing=args.spacing_um,
                max_fragments=args.max_fragments_per_neuron or None, seed=args.seed,
                min_area_frac=args.min_area_frac, units=args.units, type_map=type_map)


def _inside(a: Path, b: Path) -> bool:
    """Whether path ``a`` is ``b`` or lies inside it (both resolved)."""
    return a == b or b in a.parents


def check_out(out: Path, inputs: list[str], force: bool) -> None:
    """Refuse an --out that would lose anything: not a folder, overlapping an input, or holding
    files prepare did not write (raises :class:`UsageError`)."""
    from .dataset import read_manifest

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    target = out.resolve()
    for item in inputs:
        src = Path(item).resolve()
        if _inside(target, src) or _inside(src, target):
            how = "is" if target == src else "is inside" if _inside(target, src) else "contains"
            raise UsageError(f"--out {out} {how} the input {item}; prepare never writes where it reads: choose another --out")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise UsageError(f"--out {out} is not empty; use --force to replace the dataset there")
    ours = [name for name in OUTPUTS if (out / name).exists()]
    if ours:
        try:
            read_manifest(out)
        except DatasetError as exc:
            raise UsageError(f"--out {out} holds {', '.join(ours)}, but not as a dataset of `mogen prepare` "
                             f"({exc.problem.split(':')[0]}); --force replaces only prepare's own outputs: choose another --out") from None
    foreign = [f for split in SPLITS if (out / split).is_dir() for f in sorted((out / split).iterdir())
               if f.name not in SPLIT_FILES]
    if foreign:
        raise UsageError(f"--out {out} holds {foreign[0]}{f' (and {len(foreign) - 1} more)' if len(foreign) > 1 else ''}, "
                         f"which `mogen prepare` did not write, inside a split folder it would replace; --force replaces "
                         "only prepare's own outputs: move it away or choose another --out")


def clear_stale_work(out: Path) -> None:
    """Remove the working folders of earlier runs on ``out`` that were interrupted before the swap
    (they still hold INCOMPLETE.txt and only prepare's files). Called under the lock on ``out``,
    so no other prepare of ``out`` is running; any other leftover is named, not touched."""
    from .dataset import _CHUNKS

    known = {"INCOMPLETE.txt", _CHUNKS, *OUTPUTS}
    for stale in sorted(out.parent.glob(f".{out.name}{PARTIAL}*")):
        if stale.is_dir() and (stale / "INCOMPLETE.txt").is_file() and {f.name for f in stale.iterdir()} <= known:
            shutil.rmtree(stale)
            print(f"note: removed {stale}, left by an interrupted `mogen prepare` of {out}", file=sys.stderr)
        else:
            print(f"note: {stale} is left over from an interrupted `mogen prepare` (it may hold the dataset that was "
                  f"in {out} before it); look inside, then delete it", file=sys.stderr)


def _work_dir(out: Path) -> Path:
    """A fresh folder beside --out that the dataset is written into, clearly marked as partial."""
    work = out.parent / f".{out.name}{PARTIAL}{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if work.exists():
            shutil.rmtree(work)
        work.mkdir()
        (work / "INCOMPLETE.txt").write_text(
            f"An unfinished `mogen prepare --out {out}` (process {os.getpid()}) writes here; the dataset is moved to\n"
            f"{out} when it is complete. If that run is gone, this folder can be deleted.\n")
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        if is_write_error(exc):  # named by the folder: the working folder is gone again
            raise write_failure(OSError(exc.errno, exc.strerror), out.parent.resolve()) from None
        raise UsageError(f"--out {out}: cannot write beside it in {out.parent} ({exc.strerror or exc})") from None
    return work


def _swap_in(work: Path, out: Path) -> None:
    """Move the finished dataset from ``work`` into ``out``, replacing only prepare's own outputs.

    The old manifest goes first and the new one comes last, so a crash in between leaves a
    folder that no reader takes for a dataset.
    """
    (work / "INCOMPLETE.txt").unlink()
    if not out.exists():
        work.rename(out)
        return
    trash = work / ".old"
    trash.mkdir()
    for name in OUTPUTS:
        if (out / name).exists():
            (out / name).rename(trash / name)
    for name in reversed(OUTPUTS):
        if (work / name).exists():
            (work / name).rename(out / name)


def _preview(out: Path, name: str, n: int = 8) -> None:
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

        plot_clouds(pts[idx], out / "preview.png", titles=titles, title=f"{name}: {split} fragments (unit ball)")
    except Exception as exc:  # a missing plot must not fail a finished dataset
        print(f"warning: could not write preview.png ({type(exc).__name__}: {exc})", file=sys.stderr)


def _table(rows: list[list[str]], header: list[str]) -> str:
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip()
    return "\n".join([line(header), line(["-" * x for x in w])] + [line(r) for r in rows])


def _worker_context():
    """Workers start from a fresh process, not a fork of this one: forked after torch (or any
    OpenMP user) has run threads here, a worker can hang forever in its first OpenMP call (seen:
    navis's k-d tree in heal_skeleton after a training step). A fork server imports the readers
    once and forks the workers from that clean process."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mogen.data.prepare", "mogen.data.neuron", "navis"])
    return ctx


def _process(spec: tuple, settings: dict):
    """Read one input and cut it into fragments -> ``(manifest entry, fragments, fingerprint, error)``.

    ``error`` is None or ``(exception type name, message)``.

    Runs in a worker process with ``--workers``; returns errors as text instead of raising,
    so one bad file cannot take the pool down.
    """
    import numpy as np

    from .cells import fingerprint
    from .neuron import load_file, navis_example

    kind, what, nid = spec
    source = what if kind == "file" else nid
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            neuron = load_file(what, nid, settings["units"], settings["type_map"]) if kind == "file" else navis_example(what, settings["units"])
            fr = make_fragments(neuron, settings["radius"], settings["points"], settings["spacing"],
                                settings["max_fragments"], settings["seed"], settings["min_area_frac"])
            fp = fingerprint(neuron)
        except MemoryError:
            return None, None, None, ("MemoryError", f"{source}: out of memory while cutting it into fragments; "
                                      "try a larger --spacing-um or fewer --points")
        except Exception as exc:  # a DataError is the file's fault; anything else is a bug, named as such
            return None, None, None, (type(exc).__name__, str(exc) if isinstance(exc, DataError) else
                                      f"{source}: {type(exc).__name__}: {exc} (a bug in mogen: please report it)")
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning) and "radius" in str(w.message)]
    entry = {"id": neuron.id, "source": neuron.source, "kind": neuron.kind, "fragments": len(fr),
             "cable_um": round(fr.cable_um, 3), "units": neuron.units, "units_note": neuron.units_note,
             "anchors": fr.n_anchors, "skipped_anchors": fr.n_skipped,
             "neurite_types": np.bincount(fr.neurite_type, minlength=4).tolist(), "warnings": notes}
    return entry, fr, fp, None


def outputs(args) -> dict:
    """What this run writes, locked for its duration by :func:`mogen.cli.run_command`."""
    return {"--out": Path(args.out)}


def run(args: argparse.Namespace) -> int:
    settings = check_args(args)
    jobs = collect_inputs(args.inputs) if args.inputs else None
    out = Path(args.out)
    check_out(out, list(args.inputs), args.force)
    clear_stale_work(out)
    work = _work_dir(out)
    try:
        try:
            code = _prepare(args, settings, jobs, work, out)
        except OSError as exc:  # a full disk or no permission in the working folder
            if not is_write_error(exc):
                raise
            raise _unchanged(write_failure(exc, work), out) from None
        except OutputError as exc:
            raise _unchanged(exc, out) from None
        if code == 0:
            _swap_in(work, out)
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unchanged(exc: OutputError, out: Path) -> OutputError:
    """The error of writing the working folder, told of --out (the working folder is gone with it)."""
    return OutputError(out, "", f"{exc.problem} (nothing written; {out} is unchanged)")


def _prepare(args: argparse.Namespace, settings: dict, jobs, work: Path, out: Path) -> int:
    """Read, cut, group and split into ``work``; returns the exit status (0: ready to move in)."""
    from tqdm import tqdm

    from mogen import __version__

    from .cells import group_cells
    from .dataset import DatasetWriter, write_manifest
    from .split import assign_cells

    t0 = time.time()
    if jobs is None:
        print("no INPUT: using the 5 navis example neurons (meshes + skeletons)")
        specs = [("navis", i, f"navis.example_neurons:{i}") for i in range(5)]
    else:
        specs = [("file", str(f), nid) for f, nid in jobs]

    writer = DatasetWriter(work, args.points)
    results: dict[int, tuple[dict, object]] = {}
    failed: list[dict] = []
    bar = tqdm(total=len(specs), desc="prepare", unit="neuron", file=sys.stderr)
    workers = min(args.workers, len(specs))  # one neuron per task: more processes than inputs would idle
    pool = ProcessPoolExecutor(workers, mp_context=_worker_context()) if workers > 1 else None
    try:
        outcomes = (pool.map(_process, specs, [settings] * len(specs)) if pool else (_process(s, settings) for s in specs))
        for k, (spec, (entry, fr, fp, error)) in enumerate(zip(specs, outcomes)):
            bar.update(1)
            if error is not None:
                error_type, message = error
                if args.on_error == "raise":
                    bar.close()
                    print(f"mogen prepare: error: {message}", file=sys.stderr)
                    print(f"(nothing written; {out} is unchanged. Use --on-error skip to record bad files in the "
                          "manifest and go on)", file=sys.stderr)
                    return 1
                failed.append({"file": spec[1] if spec[0] == "file" else spec[2], "error": message, "error_type": error_type})
                continue
            for note in entry["warnings"]:
                tqdm.write(f"warning: {note}", file=sys.stderr)
            writer.add(entry["id"], fr)
            results[k] = (entry, fp)
    finally:
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)
    ok = [results[k][0] for k in sorted(results)]
    total = len(ok) + len(failed)
    if not ok:
        _print_failed(failed)
        print(f"mogen prepare: error: none of the {total} inputs could be turned into fragments; {out} is unchanged", file=sys.stderr)
        return 1

    cell_of, cells = group_cells([results[k][1] for k in sorted(results)])
    cell_split = assign_cells(cells, args.val, args.test, args.seed)
    splits = {s: [f for c in cell_split[s] for f in cells[c]["files"]] for s in SPLITS}
    try:
        counts = writer.finish(splits)
    except OSError as exc:
        if is_write_error(exc):
            raise
        raise DataError(work, "", f"cannot write the dataset ({exc.strerror or exc}); {out} is unchanged") from None
    split_of = {i: s for s, ids in splits.items() for i in ids}
    for n in ok:
        n["cell"] = cell_of[n["id"]]
        n["split"] = split_of[n["id"]]
    manifest = {
        "mogen_version": __version__,
        "radius_um": float(args.radius_um),
        "points_per_fragment": int(args.points),
        "units": "um",
        "seed": int(args.seed),
        "splits": {s: {"neurons": splits[s], "cells": cell_split[s], "fragments": counts[s]} for s in SPLITS},
        "neurons": ok,
        "cells": cells,
        "failed": failed,
        "settings": {"spacing_um": args.spacing_um, "max_fragments_per_neuron": args.max_fragments_per_neuron,
                     "min_area_frac": args.min_area_frac, "val": args.val, "test": args.test, "units": args.units,
                     "type_map": args.type_map,
                     "inputs": list(args.inputs) or ["navis.example_neurons"],
                     "neurite_types": ["unknown", "soma", "axon", "dendrite"]},
    }
    write_manifest(work, manifest)
    if not args.no_preview:
        _preview(work, out.name)

    print(f"\n{out}: {total} inputs, {len(ok)} ok, {len(failed)} failed, {len(cells)} cells, in {time.time() - t0:.1f} s")
    print(_table([[s, len(cell_split[s]), len(splits[s]), counts[s]] for s in SPLITS]
                 + [["total", len(cells), len(ok), sum(counts.values())]], ["split", "cells", "files", "fragments"]))
    shared = {c: v for c, v in cells.items() if len(v["files"]) > 1}
    if shared:
        print(f"\n{len(shared)} cells have several files (each kept in one split; reasons in manifest.json 'cells'):")
        for c, v in shared.items():
            print(f"  {c}: {', '.join(v['files'])}")
    _print_failed(failed)
    return 0


def _print_failed(failed: list[dict]) -> None:
    if failed:
        print(f"\nfailed ({len(failed)}; recorded in manifest.json 'failed'):")
        print(_table([[f["file"], f["error"].replace(f["file"] + ": ", "", 1)] for f in failed], ["file", "error"]))
