"""Score generated neuron fragments against held-out real ones, with baselines, in one report.

    python -m mogen.evaluate.generation --samples SAMPLES.npz --reference DATASET_DIR \\
        [--split test] [--n 1000] [--baselines] --out REPORT_DIR

writes ``REPORT_DIR/report.json`` (every number), ``report.md`` (one table, one row per set:
the generator and, with ``--baselines``, real training fragments, a memoriser and two
floors) and PNG plots (``features.png``, ``fragments.png``, ``morphometrics.png``,
``memorization.png``).

All comparisons happen in unit-ball coordinates: samples stored in µm are divided by their
``radius_um``, which must equal the dataset's. Metrics (definitions in their modules):

- feature-MMD: MoGen's realism score, :mod:`mogen.metrics.mmd`, on all points, features
  scaled by the std over training fragments.
- 1-NNA / COV / MMD with Chamfer (CD, squared distances) and exact EMD (Euclidean), PointFlow
  protocol, :mod:`mogen.metrics.pointcloud`, on random point subsamples (``--cd-points``,
  ``--emd-points``); EMD on the first ``--emd-n`` clouds of each set.
- morphometrics (cable, branch points, leaves, caliber, tortuosity; W1 and KS),
  :mod:`mogen.metrics.morphometrics`, on ``--morph-n`` clouds.
- memorisation (nearest-train vs nearest-held-out CD, copies), :mod:`mogen.metrics.memorization`,
  on ``--mem-n`` clouds.

Generated and reference sets are of equal size: ``n = min(--n, samples, reference fragments)``,
each drawn at random (``--seed``). With ``--cache DIR`` the reference-side work and the
baseline rows are kept, so scoring the next checkpoint's samples only scores that set.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mogen.evaluate.baselines import BASELINE_LABELS, make_baselines
from mogen.data import check_generator, read_split
from mogen.errors import UsageError
from mogen.metrics.features import FEATURE_NAMES, cloud_features
from mogen.samples import read_samples
from mogen.metrics.memorization import memorization, nearest_chamfer
from mogen.metrics.mmd import feature_scale, mmd_rbf
from mogen.metrics.morphometrics import MORPH_NAMES, compare_morphometrics, morphometrics
from mogen.metrics.pointcloud import chamfer_matrix, emd_matrix, pointflow_metrics, subsample

CACHE_FORMAT = 2  # bump when the cached scorer state or row layout changes

DESCRIPTION = __doc__


# ----------------------------------------------------------------------------- inputs


def load_samples(path: Path, dataset_dir: Path, split: str, manifest: dict, allow_overlap: bool,
                 allow_foreign: bool, log) -> tuple[np.ndarray, dict]:
    """Generated clouds in unit-ball coordinates [n, N, 3] float32, and their provenance.

    Refuses samples whose generator saw the reference split's cells (or another dataset),
    and warns loudly when the samples were conditioned on the split they are scored against.
    """
    samples = read_samples(path, radius_um=float(manifest["radius_um"]),
                           points_per_cloud=int(manifest["points_per_fragment"]))
    meta = dict(samples.provenance)
    meta["leak_check"] = check_generator(meta, dataset_dir, held_out=(split,), allow_overlap=allow_overlap,
                                         allow_foreign=allow_foreign, what=f"the generator behind {path}")
    cond_split = meta.get("cond_split") or meta.get("source_split")
    meta["conditioned_on_reference"] = bool(meta["leak_check"]["same_dataset"] and cond_split == split)
    if meta["conditioned_on_reference"]:
        log(f"WARNING: {path} was conditioned on the {split!r} split it is now scored against (its conditions "
            "carry that split's centroids, covariances and leaf counts): scores are optimistic. Sample with "
            "--cond DATASET:train or --cond none for an honest score.")
    return samples.points_unit, meta


# ----------------------------------------------------------------------------- scoring


class Scorer:
    """Holds everything computed once for the reference set; ``score(clouds)`` does one row."""

    STATE = ("ref_features", "train_features", "scale", "ref_cd", "d_rr", "ref_emd", "e_rr", "ref_morph", "heldout_to_train")

    def __init__(self, reference, train, args, log, state: dict | None = None):
        self.args, self.log = args, log
        self.timings: dict[str, float] = {}
        self.reference, self.train = reference, train
        if state is not None:
            self.__dict__.update({k: state[k] for k in self.STATE})
            return
        self.ref_features = self._timed("features: reference", cloud_features, reference, progress=True)
        self.train_features = self._timed("features: train", cloud_features, train, progress=True)
        self.scale = feature_scale(self.train_features)
        self.ref_cd = subsample(reference, args.cd_points, seed=args.seed)
        self.d_rr = self._timed("chamfer: reference", chamfer_matrix, self.ref_cd, progress=True, desc="CD ref-ref")
        m = min(args.emd_n, len(reference))
        self.ref_emd = subsample(reference[:m], args.emd_points, seed=args.seed).numpy()
        self.e_rr = self._timed("EMD: reference", emd_matrix, self.ref_emd, progress=True, desc="EMD ref-ref") if m else None
        self.ref_morph = self._timed(
            "morphometrics: reference", morphometrics, reference[: args.morph_n], args.radius_um, progress=True
        )
        k = min(args.mem_n, len(reference))
        self.heldout_to_train = self._timed(
            "memorisation: held-out vs train", nearest_chamfer, reference[:k], train,
            points=args.cd_points, query_features=self.ref_features[:k], pool_features=self.train_features,
            progress=True, desc="held-out vs train",
        )

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.STATE}

    def _timed(self, name, fn, *a, **kw):
        self.log(f"  {name} ...")
        t = time.perf_counter()
        out = fn(*a, **kw)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t
        return out

    def score(self, label: str, clouds: np.ndarray, check_memorization: bool = True) -> dict:
        a = self.args
        row: dict = {"n": len(clouds)}
        t0 = time.perf_counter()
        feats = self._timed(f"features: {label}", cloud_features, clouds, progress=True)
        row["feature_mmd"] = 1000.0 * mmd_rbf(feats / self.scale, self.ref_features / self.scale, a.sigma)
        row["features_mean"] = dict(zip(FEATURE_NAMES, feats.mean(0).tolist()))
        t1 = time.perf_counter()
        cd = subsample(clouds, a.cd_points, seed=a.seed + 7)
        d_gg = self._timed(f"chamfer: {label}", chamfer_matrix, cd, progress=True, desc=f"CD {label}")
        d_gr = self._timed(f"chamfer: {label}", chamfer_matrix, cd, self.ref_cd, progress=True, desc=f"CD {label}-ref")
        row["cd"] = pointflow_metrics(d_gr, d_gg, self.d_rr)
        row["seconds_feature_mmd_and_cd"] = time.perf_counter() - t0
        row["seconds_cd"] = time.perf_counter() - t1
        if self.e_rr is not None:
            ge = subsample(clouds[: len(self.ref_emd)], a.emd_points, seed=a.seed + 7).numpy()
            e_gg = self._timed(f"EMD: {label}", emd_matrix, ge, progress=True, desc=f"EMD {label}")
            e_gr = self._timed(f"EMD: {label}", emd_matrix, ge, self.ref_emd, progress=True, desc=f"EMD {label}-ref")
            row["emd"] = pointflow_metrics(e_gr, e_gg, self.e_rr)
        morph = self._timed(f"morphometrics: {label}", morphometrics, clouds[: a.morph_n], a.radius_um, progress=True)
        row["morphometrics"] = compare_morphometrics(morph, self.ref_morph)
        row["morph_ks_mean"] = float(np.mean([v["KS"] for v in row["morphometrics"].values()]))
        if check_memorization:
            mem = self._timed(
                f"memorisation: {label}", memorization, clouds[: a.mem_n], self.train, self.reference,
                points=a.cd_points, heldout_to_train=self.heldout_to_train, progress=True,
                features={"generated": feats[: a.mem_n], "train": self.train_features, "heldout": self.ref_features},
            )
            row["memorization"] = {k: v for k, v in mem.items() if np.ndim(v) == 0}
            row["_ratio"] = mem["ratio"]
        row["_features"], row["_morph"] = feats, morph
        return row


# ----------------------------------------------------------------------------- report


def _pct(v):
    return f"{100 * v:.1f}%"


def _first_mem(rows: dict):
    return next((r["memorization"] for r in rows.values() if r.get("memorization")), None)


def markdown(report: dict) -> str:
    rows = report["rows"]
    s = report["settings"]
    lines = [
        "# mogen generation report",
        "",
        f"Reference: `{report['reference']['dir']}` split `{report['reference']['split']}` "
        f"(neurons {', '.join(report['reference']['neurons'])}; {report['reference']['fragments']} fragments). "
        f"n = {s['n']} clouds per set, {report['reference']['points_per_fragment']} points, "
        f"R = {s['radius_um']} µm. Samples: `{report['samples'].get('path', '-')}`"
        + (f" ({report['samples'].get('solver', '?')}, {report['samples'].get('steps', '?')} steps, "
           f"guidance {report['samples'].get('guidance', '?')})" if report["samples"].get("path") else ""),
        "",
        "| set | feature-MMD ×1000 ↓ | 1-NNA-CD (→50%) | COV-CD ↑ | MMD-CD ×10³ ↓ | 1-NNA-EMD (→50%) | COV-EMD ↑ | MMD-EMD ×10² ↓ | morph KS ↓ | train/held-out CD ratio | copies |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        emd = r.get("emd")
        mem = r.get("memorization")
        lines.append(
            "| " + " | ".join([
                r["label"],
                f"{r['feature_mmd']:.2f}",
                _pct(r["cd"]["1-NNA"]),
                _pct(r["cd"]["COV"]),
                f"{1e3 * r['cd']['MMD']:.2f}",
                _pct(emd["1-NNA"]) if emd else "–",
                _pct(emd["COV"]) if emd else "–",
                f"{1e2 * emd['MMD']:.3f}" if emd else "–",
                f"{r['morph_ks_mean']:.3f}",
                f"{mem['ratio_median']:.2f} [{mem['ratio_p10']:.2f}, {mem['ratio_p90']:.2f}]" if mem else "(is training data)",
                f"{mem['copies']}/{min(s['mem_n'], r['n'])}" if mem else "–",
            ]) + " |"
        )
    lines += ["", "Morphometrics, mean per set (reference: "
              + ", ".join(f"{k} {v['mean_reference']:.3g}" for k, v in next(iter(rows.values()))["morphometrics"].items())
              + "), W1 to the reference in brackets:", "",
              "| set | " + " | ".join(MORPH_NAMES) + " |", "|---" * (len(MORPH_NAMES) + 1) + "|"]
    for r in rows.values():
        m = r["morphometrics"]
        lines.append("| " + r["label"] + " | " + " | ".join(f"{m[k]['mean_generated']:.3g} ({m[k]['W1']:.2g})" for k in MORPH_NAMES) + " |")
    lines += [
        "",
        "How to read it: a generator is interesting between the floors (blob, cylinder) and the "
        "real-train row, which is what real data from other neurons scores. 1-NNA far below 50% or "
        "copies above the real-data rate mean samples sit on training fragments (the memoriser row shows "
        "how that looks). Fragments of one neuron overlap, so held-out fragments are each other's nearest "
        "neighbours and even real data scores 1-NNA well above 50%: compare with the real-train row.",
        "",
        f"Definitions: feature-MMD = 1000 × biased squared MMD, RBF σ = {s['sigma']}, 10 MoGen shape features "
        f"on all points scaled by their std over {report['reference']['train_fragments_used']} training fragments (MoGen reports 3.54). "
        f"CD uses squared distances on {s['cd_points']} random points per cloud; EMD is exact (Euclidean, "
        f"mean over matched pairs) on {s['emd_points']} points for the first {s['emd_n']} clouds of each set; "
        f"morphometrics on {s['morph_n']} clouds (voxel {s['voxel_um']} µm, prune {s['prune_um']} µm); memorisation on "
        f"{s['mem_n']} clouds against {report['reference']['train_fragments_used']} training fragments, exact full-resolution CD, copy = nearest-train CD < "
        f"the {100 * s['copy_quantile']:g}% quantile of the real held-out→train CDs"
        + (f" (the rule flags {_pct(_first_mem(rows)['real_flagged_fraction'])} of real held-out fragments)" if _first_mem(rows) else "")
        + ". Ratio: median [p10, p90].",
        "",
        f"Timing: {report['timings']['total_s']:.0f} s total; feature-MMD + 1-NNA-CD for the first set: "
        f"{next(iter(rows.values()))['seconds_feature_mmd_and_cd']:.1f} s (+ reference-side work, see report.json).",
    ]
    return "\n".join(lines) + "\n"


def plots(out: Path, rows: dict, ref_feats, ref_morph, reference, first: str, radius_um: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    def hist_grid(fname, names, ref, per_set, title):
        cols = 5
        fig, axes = plt.subplots(int(np.ceil(len(names) / cols)), cols, figsize=(3.2 * cols, 2.6 * np.ceil(len(names) / cols)))
        for k, (ax, name) in enumerate(zip(np.ravel(axes), names)):
            vals = [ref[:, k]] + [v[:, k] for v in per_set.values()]
            lo, hi = np.percentile(np.concatenate(vals), [0.5, 99.5])
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
            ax.hist(ref[:, k], bins, density=True, color="k", alpha=0.25, label="reference (held-out)")
            for c, (label, v) in zip(colors, per_set.items()):
                ax.hist(v[:, k], bins, density=True, histtype="step", lw=1.5, color=c, label=label)
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in np.ravel(axes)[len(names):]:
            ax.axis("off")
        np.ravel(axes)[0].legend(fontsize=6)
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)

    hist_grid("features.png", FEATURE_NAMES, ref_feats, {r["label"]: r["_features"] for r in rows.values()},
              "MoGen shape features (unit-ball units)")
    hist_grid("morphometrics.png", MORPH_NAMES, ref_morph, {r["label"]: r["_morph"] for r in rows.values()},
              "Morphometrics of skeletonised fragments")

    # fragments: reference on top, then each set; each cloud seen along its smallest principal axis
    sets = [("reference (held-out)", reference)] + [(r["label"], r["_clouds"]) for r in rows.values()]
    k = 6
    fig, axes = plt.subplots(len(sets), k, figsize=(1.9 * k, 2.0 * len(sets)))
    axes = np.atleast_2d(axes)
    for i, (label, clouds) in enumerate(sets):
        for j in range(k):
            ax = axes[i, j]
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlim(-1, 1), ax.set_ylim(-1, 1), ax.set_aspect("equal")
            if j >= len(clouds):
                continue
            x = np.asarray(clouds[j], dtype=np.float64)
            c = x - x.mean(0)
            _, _, vt = np.linalg.svd(c, full_matrices=False)
            p = x @ vt[:2].T
            ax.scatter(p[:, 0], p[:, 1], s=0.2, c=x @ vt[2], cmap="viridis", linewidths=0)
        axes[i, 0].set_ylabel(label, fontsize=7)
    fig.suptitle(f"Fragments (unit ball = {radius_um:g} µm), projected on their two main axes")
    fig.tight_layout()
    fig.savefig(out / "fragments.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for c, r in zip(colors, rows.values()):
        if "_ratio" in r:
            ax.hist(np.log10(np.maximum(r["_ratio"], 1e-6)), 40, histtype="step", lw=1.5, color=c, label=r["label"])
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("log10(nearest-train CD / nearest-held-out CD)")
    ax.set_ylabel("clouds")
    ax.legend(fontsize=7)
    ax.set_title("Memorisation: < 0 means closer to training than to held-out data")
    fig.tight_layout()
    fig.savefig(out / "memorization.png", dpi=110)
    plt.close(fig)


def _cache_key(args, manifest: dict) -> str:
    """What the reference-side work and the baseline rows depend on."""
    import hashlib

    from mogen import __version__

    settings = ("reference", "split", "train_split", "n", "cd_points", "emd_n", "emd_points", "morph_n",
                "mem_n", "train_n", "sigma", "voxel_um", "prune_um", "copy_quantile", "jitter", "seed")
    payload = {k: str(getattr(args, k)) for k in settings}
    payload["manifest"] = manifest
    payload["version"] = f"{__version__}/{CACHE_FORMAT}"
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    return obj


# ----------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", type=Path, help="samples.npz written by sample.py (omit to score --baselines only)")
    p.add_argument("--reference", type=Path, required=True, help="dataset directory (manifest.json + splits)")
    p.add_argument("--split", default="test", help="held-out split to compare with")
    p.add_argument("--train-split", default="train", help="split the generator was trained on (feature scale, memorisation, baselines)")
    p.add_argument("--n", type=int, default=1000, help="clouds per set (capped by the samples and the reference split)")
    p.add_argument("--out", type=Path, required=True, help="report directory (must be empty or new, unless --force)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out, replacing report files")
    p.add_argument("--baselines", action="store_true", help="also score real train fragments, a memoriser and two floors")
    p.add_argument("--cd-points", type=int, default=128, help="random points per cloud for the Chamfer matrices")
    p.add_argument("--emd-n", type=int, default=64, help="clouds per set for the EMD metrics (0: skip EMD)")
    p.add_argument("--emd-points", type=int, default=128, help="random points per cloud for EMD (exact assignment, O(P^3))")
    p.add_argument("--morph-n", type=int, default=300, help="clouds per set for morphometrics")
    p.add_argument("--mem-n", type=int, default=200, help="clouds per set for the memorisation check")
    p.add_argument("--train-n", type=int, default=5000,
                   help="training fragments used (random subset): feature-MMD scale, memorisation pool, baselines")
    p.add_argument("--sigma", type=float, default=10.0, help="RBF bandwidth of feature-MMD (MoGen: 10)")
    p.add_argument("--voxel-um", type=float, default=1.0, help="skeletonisation voxel (µm)")
    p.add_argument("--prune-um", type=float, default=2.0, help="prune terminal skeleton branches shorter than this (µm)")
    p.add_argument("--copy-quantile", type=float, default=0.01,
                   help="copy if nearest-train CD < this quantile of real held-out fragments' nearest-train CDs")
    p.add_argument("--jitter", type=float, default=0.01, help="memoriser baseline jitter (unit-ball units)")
    p.add_argument("--allow-overlap", action="store_true", help="score even if the generator was trained on reference cells")
    p.add_argument("--allow-foreign-generator", action="store_true",
                   help="score samples of a generator trained on another dataset (cells are then compared by id only)")
    p.add_argument("--cache", type=Path, default=None,
                   help="directory to keep the reference-side work and baseline rows in, so scoring another "
                        "samples file against the same data and settings only scores the new set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")


def run(args) -> int:
    t_start = time.perf_counter()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.samples is None and not args.baselines:
        raise UsageError("nothing to score: give --samples and/or --baselines")
    out = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise UsageError(f"{out} exists and is not empty; choose a new --out or pass --force")
    ref_split = read_split(args.reference, args.split)
    train_split = read_split(args.reference, args.train_split)
    manifest, ref_all, train_all = ref_split.manifest, ref_split.points, train_split.points
    train_idx = np.sort(np.random.default_rng(args.seed + 1).permutation(len(train_all))[: args.train_n])
    train = np.asarray(train_all[train_idx], dtype=np.float32)
    args.radius_um = float(manifest["radius_um"])
    ref_neurons = ref_split.neurons
    if len(ref_all) < 2:
        raise UsageError(f"split {args.split!r} of {args.reference} has {len(ref_all)} fragments; need >= 2")
    if len(train) < 2:
        raise UsageError(f"split {args.train_split!r} of {args.reference} has {len(train)} fragments; need >= 2")
    samples, meta = (None, {})
    if args.samples is not None:
        samples, meta = load_samples(args.samples, args.reference, args.split, manifest, args.allow_overlap,
                                     args.allow_foreign_generator, log)
        meta["path"] = str(args.samples)
    n = min(args.n, len(ref_all), *( [len(samples)] if samples is not None else []))
    if n < args.n:
        log(f"note: n = {n} clouds per set (asked {args.n}; reference has {len(ref_all)}"
            + (f", samples {len(samples)})" if samples is not None else ")"))
    if n < 2:
        raise UsageError(f"need at least 2 clouds per set, got n = {n}")
    args.n = n
    rng = np.random.default_rng(args.seed)
    reference = np.asarray(ref_all[np.sort(rng.permutation(len(ref_all))[:n])], dtype=np.float32)
    rng.shuffle(reference)  # subsets (EMD, morphometrics, memorisation) take the first rows

    log(f"reference: {args.reference} [{args.split}] n={n}; train fragments used {len(train)} of {len(train_all)}")
    cache_file = cached = None
    if args.cache is not None:
        cache_file = args.cache / f"eval-generation-{_cache_key(args, manifest)}.pt"
        if cache_file.is_file():
            cached = torch.load(cache_file, weights_only=False)
            log(f"reusing reference-side work and baseline rows from {cache_file}")
    scorer = Scorer(reference, train, args, log, state=cached["scorer"] if cached else None)
    sets: dict[str, tuple[str, np.ndarray]] = {}
    if samples is not None:
        # random order too: the subsets below take the first rows, and sample.py may write in condition order
        sets["generated"] = ("generated", samples[rng.permutation(len(samples))[:n]])
    if args.baselines:
        try:
            baselines = make_baselines(reference, train, n, seed=args.seed, jitter=args.jitter)
        except ValueError as e:
            raise UsageError(f"{args.reference}: {e}") from None
        for key, clouds in baselines.items():
            sets[key] = (BASELINE_LABELS[key], clouds)
    rows = {}
    cached_rows = cached["rows"] if cached else {}
    for key, (label, clouds) in sets.items():
        if key in cached_rows:  # baselines are deterministic given the cache key
            row = dict(cached_rows[key])
        else:
            log(f"scoring {label}")
            row = scorer.score(label, clouds, check_memorization=key != "real_train")
        row["label"], row["_clouds"] = label, clouds
        rows[key] = row
    if cache_file is not None:
        keep = {k: {f: v for f, v in r.items() if f != "_clouds"} for k, r in rows.items() if k != "generated"}
        keep = {**cached_rows, **keep}
        if cached is None or set(keep) != set(cached_rows):
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"scorer": scorer.state(), "rows": keep}, cache_file)
            log(f"cached reference-side work and baseline rows in {cache_file}")

    out.mkdir(parents=True, exist_ok=True)
    report = {
        "format": "mogen-eval-generation/1",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "reference": {
            "dir": str(args.reference), "split": args.split, "neurons": ref_neurons, "fragments": len(ref_all),
            "points_per_fragment": int(manifest["points_per_fragment"]), "radius_um": args.radius_um,
            "train_split": args.train_split, "train_fragments": len(train_all), "train_fragments_used": len(train),
        },
        "samples": meta,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"},
        "rows": rows,
        "timings": {**{k: round(v, 2) for k, v in scorer.timings.items()}, "total_s": time.perf_counter() - t_start},
    }
    log("writing plots ...")
    plots(out, rows, scorer.ref_features, scorer.ref_morph, reference, next(iter(rows)), args.radius_um)
    report["timings"]["total_s"] = time.perf_counter() - t_start
    (out / "report.json").write_text(json.dumps(_jsonable(report), indent=1))
    (out / "report.md").write_text(markdown(report))
    log(f"wrote {out}/report.json, report.md, features.png, fragments.png, morphometrics.png, memorization.png")
    print(markdown(report))
    return 0


def main(argv=None) -> int:
    from mogen.cli import run_command

    return run_command("python -m mogen.evaluate.generation", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
