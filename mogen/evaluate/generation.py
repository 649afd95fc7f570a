"""Score generated neuron fragments against held-out real ones, with baselines, in one report.

    python -m mogen.evaluate.generation --samples SAMPLES.npz --reference DATASET_DIR \\
        [--split test] [--n 1000] [--baselines] --out REPORT_DIR

writes ``REPORT_DIR/report.json`` (every number), ``report.md`` (one table, one row per set:
the generator and, with ``--baselines``, real training fragments, a memoriser and two
floors) and PNG plots (``features.png``, ``fragments.png``, ``morphometrics.png``,
``memorization.png``).

All comparisons happen in unit-ball coordinates: samples stored in µm are divided by their
``radius_um``, which must equal the dataset's. Samples are scored as stored: nothing is
clipped here (``sample.py --clip-ball`` is recorded in the samples' provenance and shown).
Metrics (definitions in their modules):

- feature-MMD: MoGen's realism score, :mod:`mogen.metrics.mmd`, on all points, features
  scaled by the std over training fragments, with its set sizes and its bias floor (what two
  samples of one distribution score at those sizes, :func:`mogen.metrics.mmd.mmd_floor`).
- outside the ball: the fraction of points beyond the crop sphere (0 for real fragments).
- NN ratio: mean nearest-neighbour distance of the set / of the reference (1 is right; well
  below 1 means clumped points, strings of beads instead of surfaces).
- 1-NNA / COV / MMD with Chamfer (CD, squared distances) and exact EMD (Euclidean), PointFlow
  protocol, :mod:`mogen.metrics.pointcloud`, on random point subsamples (``--cd-points``,
  ``--emd-points``); EMD on the first ``--emd-n`` clouds of each set.
- morphometrics (cable, branch points, leaves, caliber, tortuosity; W1, KS and means),
  :mod:`mogen.metrics.morphometrics`, on ``--morph-n`` clouds.
- memorisation (nearest-train vs nearest-held-out CD, copies), :mod:`mogen.metrics.memorization`,
  on ``--mem-n`` clouds.
- critic: held-out accuracy of a PyG point-cloud network trained to tell the set from the
  reference (50% = indistinguishable), :func:`mogen.evaluate.critic.two_sample_test`, on
  ``--critic-n`` clouds per side (half train it, half measure it) after ``--critic-steps``
  steps; ``--critic-n 0`` skips it (it trains one network per row).

With ``--wandb offline`` (or ``online``) the tables and plots also go to a wandb run in
``REPORT_DIR/wandb`` (``wandb sync REPORT_DIR/wandb/offline-run-*`` uploads an offline one).

Generated and reference sets are of equal size: ``n = min(--n, samples, reference fragments)``,
each drawn at random (``--seed``). With ``--cache DIR`` the reference-side work and the
baseline rows are kept, so scoring the next checkpoint's samples only scores that set.
Per-cloud and per-pair work (features, EMD, morphometrics, the exact memorisation search) runs
in ``--workers`` processes (default: one per usable core); the numbers do not depend on it.

Samples conditioned on the split they are scored against (``sample.py --cond DATASET:test``)
carry that split's centroids, covariances and leaf counts: the report then carries a loud
warning (``report.json``: ``warnings``, ``samples.conditioned_on_reference``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mogen.evaluate.baselines import BASELINE_LABELS, make_baselines
from mogen.evaluate.critic import two_sample_test
from mogen.data import check_generator, read_split
from mogen.errors import UsageError
from mogen.outputs import atomic_path, check_own, json_with, write_json, write_text
from mogen.metrics.features import FEATURE_NAMES, cloud_features
from mogen.samples import read_samples
from mogen.metrics.memorization import memorization, nearest_chamfer
from mogen.metrics.parallel import default_workers, map_chunks, split
from mogen.metrics.mmd import feature_scale, mmd_floor, mmd_rbf
from mogen.metrics.morphometrics import MORPH_NAMES, compare_morphometrics, morphometrics
from mogen.metrics.pointcloud import (SPACING_KS, chamfer_matrix, emd_matrix, knn_spacing, outside_ball, pointflow_metrics,
                                      subsample)
from mogen.runlog import WANDB_MODES, log_report

REPORT_KEYS = ("format", "rows", "settings")  # what marks a report.json as this command's
CACHE_FORMAT = 4  # bump when the cached scorer state or row layout changes
NN_FEATURE = FEATURE_NAMES.index("nn_mean")
CRITIC_K = 12  # neighbours in the critic's kNN graphs (two_sample_test's default)

DESCRIPTION = __doc__


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Settings:
    """How sets are scored (everything the reference-side work and baseline rows depend on)."""

    n: int = 1000  # clouds per set (capped by the samples and the reference split)
    cd_points: int = 128
    emd_n: int = 64
    emd_points: int = 128
    morph_n: int = 300
    mem_n: int = 200
    train_n: int = 5000
    sigma: float = 10.0
    voxel_um: float = 1.0
    prune_um: float = 2.0
    copy_quantile: float = 0.01
    jitter: float = 0.01
    critic_n: int = 256  # clouds per side for the learned two-sample critic (0: skip it)
    critic_steps: int = 300
    critic_points: int = 256
    seed: int = 0
    radius_um: float = 1.0  # crop radius of the dataset (set from its manifest)


@dataclass(frozen=True)
class Request:
    """What to score, against what, and where the report goes."""

    reference: Path
    out: Path
    samples: Path | None = None
    split: str = "test"
    train_split: str = "train"
    baselines: bool = False
    force: bool = False
    allow_overlap: bool = False
    allow_foreign: bool = False
    cache: Path | None = None
    threads: int = 0
    wandb: str = "off"
    workers: int = 1  # processes for the per-cloud and per-pair metrics (results do not depend on it)


def settings_from_args(args) -> tuple[Request, Settings]:
    """The two settings records of parsed command-line arguments (``args`` is not changed)."""
    request = Request(reference=args.reference, out=args.out, samples=args.samples, split=args.split,
                      train_split=args.train_split, baselines=args.baselines, force=args.force,
                      allow_overlap=args.allow_overlap, allow_foreign=args.allow_foreign_generator,
                      cache=args.cache, threads=args.threads, wandb=args.wandb, workers=args.workers)
    fields = {f.name for f in dataclasses.fields(Settings)} - {"radius_um"}
    return request, Settings(**{k: getattr(args, k) for k in fields})


def check_request(request: Request, settings: Settings) -> None:
    """Argument errors, before any work."""
    if request.samples is None and not request.baselines:
        raise UsageError("nothing to score: give --samples and/or --baselines")
    out = request.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not request.force:
        raise UsageError(f"{out} exists and is not empty; choose a new --out or pass --force")
    check_own(out / "report.json", lambda p: json_with(p, REPORT_KEYS), "mogen evaluate")
    for name in ("n", "cd_points", "emd_points", "train_n"):
        if getattr(settings, name) < 2:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 2, got {getattr(settings, name)}")
    for name in ("emd_n", "morph_n", "mem_n", "critic_n"):
        if getattr(settings, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(settings, name)}")
    if not settings.sigma > 0:
        raise UsageError(f"--sigma must be positive, got {settings.sigma}")
    if settings.critic_n:
        if settings.critic_n < 4:
            raise UsageError(f"--critic-n must be 0 (skip the critic) or at least 4 clouds per side, got {settings.critic_n}")
        if settings.critic_steps < 1:
            raise UsageError(f"--critic-steps must be at least 1, got {settings.critic_steps}")
        if settings.critic_points <= CRITIC_K:
            raise UsageError(f"--critic-points must exceed the critic's {CRITIC_K} neighbours, got {settings.critic_points}")
    if request.wandb not in WANDB_MODES:
        raise UsageError(f"--wandb must be one of {', '.join(WANDB_MODES)}, got {request.wandb!r}")
    if request.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {request.workers}")


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
    meta["path"] = str(path)
    meta["leak_check"] = check_generator(meta, dataset_dir, held_out=(split,), allow_overlap=allow_overlap,
                                         allow_foreign=allow_foreign, what=f"the generator behind {path}")
    meta["conditioned_on_reference"] = conditioned_on(meta, split)
    if meta["conditioned_on_reference"]:
        log(f"WARNING: {conditioning_warning(meta, split)}")
    return samples.points_unit, meta


def conditioned_on(provenance: dict, split: str) -> bool:
    """Whether samples took conditions or noise moments from ``split`` of the dataset they are scored on."""
    same = provenance.get("leak_check", {}).get("same_dataset", True)
    used = {provenance.get("cond_split"), provenance.get("source_split")}
    return bool(same and split in used)


def conditioning_warning(provenance: dict, split: str) -> str:
    return (f"{provenance.get('path', 'the samples')} were conditioned on the {split!r} split they are scored "
            "against (their conditions or noise moments carry that split's centroids, covariances and leaf "
            "counts): scores are optimistic. Sample with --cond DATASET:train or --cond none for an honest score.")


@dataclass
class ReferenceSets:
    """The clouds a report compares with: ``reference`` (n held-out), ``train`` (a random subset)."""

    reference: np.ndarray
    train: np.ndarray
    manifest: dict
    neurons: list
    fragments: int  # in the reference split
    train_fragments: int  # in the train split


def load_reference(request: Request, settings: Settings) -> ReferenceSets:
    """Open both splits and draw the training subset (the reference rows are drawn once n is known)."""
    ref_split = read_split(request.reference, request.split)
    train_split = read_split(request.reference, request.train_split)
    if len(ref_split) < 2:
        raise UsageError(f"split {request.split!r} of {request.reference} has {len(ref_split)} fragments; need >= 2")
    if len(train_split) < 2:
        raise UsageError(f"split {request.train_split!r} of {request.reference} has {len(train_split)} fragments; need >= 2")
    idx = np.sort(np.random.default_rng(settings.seed + 1).permutation(len(train_split))[: settings.train_n])
    train = np.asarray(train_split.points[idx], dtype=np.float32)
    return ReferenceSets(ref_split.points, train, ref_split.manifest, ref_split.neurons, len(ref_split), len(train_split))


def draw_reference(points, n: int, seed: int) -> np.ndarray:
    """``n`` random fragments in random order (subsets take the first rows)."""
    rng = np.random.default_rng(seed)
    reference = np.asarray(points[np.sort(rng.permutation(len(points))[:n])], dtype=np.float32)
    rng.shuffle(reference)
    return reference


# ----------------------------------------------------------------------------- scoring


class Scorer:
    """Holds everything computed once for the reference set; ``score(clouds)`` does one row.

    ``reference`` [n, N, 3] and ``train`` [t, N, 3] are unit-ball clouds; ``settings`` says how
    to score (:class:`Settings`). ``metrics`` narrows what is computed (``bench/quality.py``
    skips EMD and memorisation): any of ``"cd"``, ``"emd"``, ``"morph"``, ``"mem"``, ``"critic"``.
    """

    STATE = ("ref_features", "train_features", "scale", "floor_kernel", "ref_cd", "d_rr", "ref_emd", "e_rr",
             "ref_morph", "heldout_to_train", "ref_spacing")
    METRICS = ("cd", "emd", "morph", "mem", "critic")

    def __init__(self, reference, train, settings: Settings, log=None, state: dict | None = None,
                 metrics: tuple[str, ...] = METRICS, progress: bool = True, workers: int = 1):
        self.settings, self.log, self.metrics, self.progress = settings, log or (lambda msg: None), metrics, progress
        self.workers = workers
        self.timings: dict[str, float] = {}
        self.reference, self.train = reference, train
        self._known_features: dict[bytes, np.ndarray] | None = None
        if state is not None:
            self.__dict__.update({k: state[k] for k in self.STATE if k != "ref_spacing"})
            # Caches written before the spacing metric existed lack it: compute it then.
            self.ref_spacing = state.get("ref_spacing")
            if self.ref_spacing is None:
                self.ref_spacing = knn_spacing(reference).mean(0)
            return
        s, p, w = settings, progress, workers
        self.ref_features = self._timed("features: reference", self.features, reference)
        self.train_features = self._timed("features: train", self.features, train)
        self.scale = feature_scale(self.train_features)
        self.floor_kernel = mmd_floor(1, 1, self.ref_features / self.scale, s.sigma) / 2000.0  # 1 - E k(x, x')
        self.ref_spacing = self._timed("spacing: reference", knn_spacing, reference).mean(0)
        self.ref_cd = self.d_rr = self.ref_emd = self.e_rr = self.ref_morph = self.heldout_to_train = None
        if "cd" in metrics:
            self.ref_cd = subsample(reference, s.cd_points, seed=s.seed)
            self.d_rr = self._timed("chamfer: reference", chamfer_matrix, self.ref_cd, progress=p, desc="CD ref-ref")
        m = min(s.emd_n, len(reference))
        if "emd" in metrics and m:
            self.ref_emd = subsample(reference[:m], s.emd_points, seed=s.seed).numpy()
            self.e_rr = self._timed("EMD: reference", emd_matrix, self.ref_emd, progress=p, desc="EMD ref-ref", workers=w)
        if "morph" in metrics and s.morph_n:
            self.ref_morph = self._timed("morphometrics: reference", morphometrics, reference[: s.morph_n],
                                         s.radius_um, s.voxel_um, s.prune_um, progress=p, workers=w)
        k = min(s.mem_n, len(reference))
        if "mem" in metrics and k:
            self.heldout_to_train = self._timed(
                "memorisation: held-out vs train", nearest_chamfer, reference[:k], train,
                points=s.cd_points, query_features=self.ref_features[:k], pool_features=self.train_features,
                progress=p, desc="held-out vs train", workers=w,
            )

    def features(self, clouds) -> np.ndarray:
        """Shape features of ``clouds``; clouds of the training subset reuse the train features.

        (The real-train baseline row is made of training fragments: their features were computed
        for the feature scale already.) Identical to ``cloud_features(clouds)``.
        """
        given = np.asarray(clouds.detach().cpu() if isinstance(clouds, torch.Tensor) else clouds)
        x = np.ascontiguousarray(given, dtype=np.float32)
        if self._known_features is None and getattr(self, "train_features", None) is not None:
            train = np.ascontiguousarray(np.asarray(self.train, dtype=np.float32))
            self._known_features = {_cloud_key(c): f for c, f in zip(train, self.train_features)}
        known = self._known_features or {}
        keys = [_cloud_key(c) for c in x]
        todo = [i for i, k in enumerate(keys) if k not in known]
        out = np.empty((len(x), len(FEATURE_NAMES)))
        if todo:
            out[todo] = features_parallel(given if len(todo) == len(x) else given[todo], self.workers, self.progress)
        for i, k in enumerate(keys):
            if k in known:
                out[i] = known[k]
        return out

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.STATE}

    def _timed(self, name, fn, *a, **kw):
        self.log(f"  {name} ...")
        t = time.perf_counter()
        out = fn(*a, **kw)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t
        return out

    def score(self, label: str, clouds: np.ndarray, check_memorization: bool = True) -> dict:
        """One row: every metric of ``clouds`` against the reference (see the module docstring)."""
        s, p = self.settings, self.progress
        n, m = len(clouds), len(self.reference)
        row: dict = {"n": n, "m": m}
        t0 = time.perf_counter()
        feats = self._timed(f"features: {label}", self.features, clouds)
        row["feature_mmd"] = 1000.0 * mmd_rbf(feats / self.scale, self.ref_features / self.scale, s.sigma)
        row["mmd_floor"] = 1000.0 * (1.0 / n + 1.0 / m) * self.floor_kernel
        row["features_mean"] = dict(zip(FEATURE_NAMES, feats.mean(0).tolist()))
        row["nn_ratio"] = float(feats[:, NN_FEATURE].mean() / self.ref_features[:, NN_FEATURE].mean())
        # Uniformity at several scales (k = 1, 8, 32, 128): generated ÷ reference spacing.
        spacing = self._timed(f"spacing: {label}", knn_spacing, clouds).mean(0)
        for k, g, r in zip(SPACING_KS, spacing, self.ref_spacing):
            row[f"nn_ratio_k{k}"] = float(g / r)
        out = outside_ball(clouds)
        row["outside_ball"] = float(out.mean())
        row["outside_1.2"] = float(outside_ball(clouds, 1.2).mean())
        row["clouds_with_outside_points"] = float((out > 0).mean())
        if self.d_rr is not None:
            cd = subsample(clouds, s.cd_points, seed=s.seed + 7)
            d_gg = self._timed(f"chamfer: {label}", chamfer_matrix, cd, progress=p, desc=f"CD {label}")
            d_gr = self._timed(f"chamfer: {label}", chamfer_matrix, cd, self.ref_cd, progress=p, desc=f"CD {label}-ref")
            row["cd"] = pointflow_metrics(d_gr, d_gg, self.d_rr)
        row["seconds_feature_mmd_and_cd"] = time.perf_counter() - t0
        if self.e_rr is not None:
            ge = subsample(clouds[: len(self.ref_emd)], s.emd_points, seed=s.seed + 7).numpy()
            e_gg = self._timed(f"EMD: {label}", emd_matrix, ge, progress=p, desc=f"EMD {label}", workers=self.workers)
            e_gr = self._timed(f"EMD: {label}", emd_matrix, ge, self.ref_emd, progress=p, desc=f"EMD {label}-ref",
                               workers=self.workers)
            row["emd"] = pointflow_metrics(e_gr, e_gg, self.e_rr)
        if self.ref_morph is not None:
            morph = self._timed(f"morphometrics: {label}", morphometrics, clouds[: s.morph_n], s.radius_um,
                                s.voxel_um, s.prune_um, progress=p, workers=self.workers)
            row["morphometrics"] = compare_morphometrics(morph, self.ref_morph)
            row["morph_ks_mean"] = float(np.mean([v["KS"] for v in row["morphometrics"].values()]))
            row["_morph"] = morph
        if check_memorization and self.heldout_to_train is not None:
            mem = self._timed(
                f"memorisation: {label}", memorization, clouds[: s.mem_n], self.train, self.reference,
                points=s.cd_points, heldout_to_train=self.heldout_to_train, progress=p, workers=self.workers,
                features={"generated": feats[: s.mem_n], "train": self.train_features, "heldout": self.ref_features},
            )
            row["memorization"] = {k: v for k, v in mem.items() if np.ndim(v) == 0}
            row["_ratio"] = mem["ratio"]
        if "critic" in self.metrics and s.critic_n:
            n_side = min(s.critic_n, n, m)
            if n_side >= 4:  # two held-out clouds per side at the least
                c = self._timed(f"critic: {label}", two_sample_test, clouds, self.reference, n=n_side,
                                steps=s.critic_steps, points=s.critic_points, k=CRITIC_K, seed=s.seed, progress=p)
                row["critic"] = {k: c[k] for k in ("accuracy", "ci95", "p_value", "auroc", "train_accuracy", "n_per_side",
                                                   "n_test_per_side", "steps", "points", "seconds")}
        row["_features"] = feats
        return row


def _cloud_key(cloud: np.ndarray) -> bytes:
    """A cloud's identity for reuse: a digest of its float32 bytes (equal bytes, equal features)."""
    import hashlib

    return hashlib.blake2b(cloud.tobytes(), digest_size=16).digest()


def _features_chunk(clouds) -> np.ndarray:
    return cloud_features(clouds, workers=1)


def features_parallel(clouds, workers: int, progress: bool = False) -> np.ndarray:
    """:func:`cloud_features` of ``clouds`` with ``workers`` processes (same values)."""
    if workers <= 1 or len(clouds) < 2:
        return cloud_features(clouds, progress=progress)
    x = np.asarray(clouds.detach().cpu() if isinstance(clouds, torch.Tensor) else clouds)
    return np.concatenate(map_chunks(_features_chunk, [x[r.start : r.stop] for r in split(len(x), 4 * workers)], workers))


def score_sets(scorer: Scorer, sets: dict[str, tuple[str, np.ndarray]], cached_rows: dict, log) -> dict:
    """Score each ``{key: (label, clouds)}``; rows of keys in ``cached_rows`` are reused."""
    rows = {}
    for key, (label, clouds) in sets.items():
        if key in cached_rows:  # baselines are deterministic given the cache key
            row = dict(cached_rows[key])
        else:
            log(f"scoring {label}")
            row = scorer.score(label, clouds, check_memorization=key != "real_train")
        row["label"], row["_clouds"] = label, clouds
        rows[key] = row
    return rows


# ----------------------------------------------------------------------------- report


def _pct(v):
    return f"{100 * v:.1f}%"


def _critic_cell(c) -> str:
    if not c:
        return "–"
    return f"{_pct(c['accuracy'])} [{100 * c['ci95'][0]:.0f}, {100 * c['ci95'][1]:.0f}] n={c['n_per_side']}"


def _first_mem(rows: dict):
    return next((r["memorization"] for r in rows.values() if r.get("memorization")), None)


PROVENANCE_SHOWN = ("checkpoint", "pretrained", "step", "source", "source_split", "cond", "cond_split", "cond_groups",
                    "solver", "steps", "nfe", "grid", "guidance", "clip_ball", "seed")


def provenance_line(meta: dict) -> str:
    """The samples' provenance as one line of ``key value`` pairs (unknown keys shown as ``?``)."""
    if not meta.get("path"):
        return "Samples: none (baselines only)."
    shown = ", ".join(f"{k} {meta.get(k, '?')}" for k in PROVENANCE_SHOWN if k in meta or k in ("clip_ball", "cond_split"))
    return f"Samples: `{meta['path']}` ({shown})."


def markdown(report: dict) -> str:
    rows = report["rows"]
    s = report["settings"]
    ref = report["reference"]
    lines = ["# mogen generation report", ""]
    for w in report.get("warnings", []):
        lines += [f"> **WARNING: {w}**", ""]
    lines += [
        f"Reference: `{ref['dir']}` split `{ref['split']}` (neurons {', '.join(ref['neurons'])}; "
        f"{ref['fragments']} fragments). n = {s['n']} clouds per set, {ref['points_per_fragment']} points, "
        f"R = {s['radius_um']} µm.",
        "",
        provenance_line(report["samples"]),
        "",
        "| set | feature-MMD ×1000 ↓ [floor] | outside ball ↓ | NN ratio k1 / k8 / k32 / k128 (→1) | 1-NNA-CD (→50%) | critic acc. (→50%) [95% CI] "
        "| COV-CD ↑ | MMD-CD ×10³ ↓ | 1-NNA-EMD (→50%) | COV-EMD ↑ | MMD-EMD ×10² ↓ | morph KS ↓ | train/held-out CD ratio "
        "| copies |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        emd, mem, cd = r.get("emd"), r.get("memorization"), r.get("cd")
        lines.append("| " + " | ".join([
            r["label"],
            f"{r['feature_mmd']:.2f} [{r['mmd_floor']:.2f}]",
            _pct(r["outside_ball"]),
            " / ".join(f"{r[f'nn_ratio_k{k}']:.2f}" if f"nn_ratio_k{k}" in r else "–" for k in SPACING_KS),
            _pct(cd["1-NNA"]) if cd else "–",
            _critic_cell(r.get("critic")),
            _pct(cd["COV"]) if cd else "–",
            f"{1e3 * cd['MMD']:.2f}" if cd else "–",
            _pct(emd["1-NNA"]) if emd else "–",
            _pct(emd["COV"]) if emd else "–",
            f"{1e2 * emd['MMD']:.3f}" if emd else "–",
            f"{r['morph_ks_mean']:.3f}" if "morph_ks_mean" in r else "–",
            f"{mem['ratio_median']:.2f} [{mem['ratio_p10']:.2f}, {mem['ratio_p90']:.2f}]" if mem else "(is training data)",
            f"{mem['copies']}/{min(s['mem_n'], r['n'])}" if mem else "–",
        ]) + " |")
    morph_rows = [r for r in rows.values() if "morphometrics" in r]
    if morph_rows:
        first = morph_rows[0]["morphometrics"]
        lines += ["", "Morphometrics, mean per set (reference: "
                  + ", ".join(f"{k} {v['mean_reference']:.3g}" for k, v in first.items())
                  + "), W1 to the reference in brackets:", "",
                  "| set | " + " | ".join(MORPH_NAMES) + " |", "|---" * (len(MORPH_NAMES) + 1) + "|"]
        for r in morph_rows:
            m = r["morphometrics"]
            lines.append("| " + r["label"] + " | "
                         + " | ".join(f"{m[k]['mean_generated']:.3g} ({m[k]['W1']:.2g})" for k in MORPH_NAMES) + " |")
    mem = _first_mem(rows)
    lines += [
        "",
        "How to read it: a generator is interesting between the floors (blob, cylinder) and the "
        "real-train row, which is what real data from other neurons scores. The feature-MMD floor in brackets is "
        "what two samples of one distribution score at these set sizes: differences near it mean nothing. "
        "Real fragments have no point outside the ball and an NN ratio of about 1. "
        "1-NNA far below 50% or copies above the real-data rate mean samples sit on training fragments (the "
        "memoriser row shows how that looks). Fragments of one neuron overlap, so held-out fragments are each "
        "other's nearest neighbours and even real data scores 1-NNA well above 50%: compare with the real-train row.",
        "",
        f"Definitions: feature-MMD = 1000 × biased squared MMD, RBF σ = {s['sigma']}, 10 MoGen shape features "
        f"on all points scaled by their std over {ref['train_fragments_used']} training fragments (MoGen reports 3.54); "
        "floor = 1000 (1/n + 1/m)(1 - mean kernel between reference fragments). "
        f"CD uses squared distances on {s['cd_points']} random points per cloud; EMD is exact (Euclidean, "
        f"mean over matched pairs) on {s['emd_points']} points for the first {s['emd_n']} clouds of each set; "
        f"morphometrics on {s['morph_n']} clouds (voxel {s['voxel_um']} µm, prune {s['prune_um']} µm); memorisation on "
        f"{s['mem_n']} clouds against {ref['train_fragments_used']} training fragments, exact full-resolution CD, "
        f"copy = nearest-train CD < the {100 * s['copy_quantile']:g}% quantile of the real held-out→train CDs"
        + (f" (the rule flags {_pct(mem['real_flagged_fraction'])} of real held-out fragments)" if mem else "")
        + ". Ratio: median [p10, p90]. "
        + (f"Critic: a PyG point-cloud network (EdgeConv) trained {s['critic_steps']} steps to tell the set from the "
           f"reference on half of n clouds per side ({s['critic_points']} points each, moment frame), accuracy on the "
           "other half (50% = it cannot tell them apart; Wilson 95% CI, which treats overlapping crops of one neuron "
           "as independent, so it is a lower bound on the uncertainty)." if s.get("critic_n") else
           "Critic: skipped (--critic-n 0)."),
        "",
        f"Timing: {report['timings']['total_s']:.0f} s total; feature-MMD + 1-NNA-CD for the first set: "
        f"{next(iter(rows.values()))['seconds_feature_mmd_and_cd']:.1f} s (+ reference-side work, see report.json).",
    ]
    return "\n".join(lines) + "\n"


TABLE_COLUMNS = ("set", "n", "feature_mmd", "mmd_floor", "outside_ball", "nn_ratio",
                 *(f"nn_ratio_k{k}" for k in SPACING_KS), "1-NNA-CD", "COV-CD", "MMD-CD",
                 "1-NNA-EMD", "COV-EMD", "MMD-EMD", "morph_ks", "critic_accuracy", "critic_n_per_side",
                 "train_heldout_cd_ratio", "copies")
PLOTS = ("features.png", "fragments.png", "morphometrics.png", "memorization.png")


def report_tables(report: dict) -> dict[str, tuple[list[str], list[list]]]:
    """The report's tables as ``{name: (columns, rows)}`` (one row per set; NaN where a metric was
    not computed): what ``--wandb`` logs.

    >>> rows = {"generated": {"label": "generated", "n": 8, "feature_mmd": 3.0, "mmd_floor": 1.0, "outside_ball": 0.0,
    ...                       "nn_ratio": 1.0, "critic": {"accuracy": 0.5, "n_per_side": 8}}}
    >>> columns, table = report_tables({"rows": rows})["realism"]
    >>> dict(zip(columns, table[0]))["critic_accuracy"], len(columns) == len(table[0])
    (0.5, True)
    """
    nan = float("nan")
    realism = []
    for key, r in report["rows"].items():
        cd, emd, mem, critic = r.get("cd") or {}, r.get("emd") or {}, r.get("memorization") or {}, r.get("critic") or {}
        realism.append([r.get("label", key), r["n"], r["feature_mmd"], r["mmd_floor"], r["outside_ball"], r["nn_ratio"],
                        *(r.get(f"nn_ratio_k{k}", nan) for k in SPACING_KS),
                        cd.get("1-NNA", nan), cd.get("COV", nan), cd.get("MMD", nan),
                        emd.get("1-NNA", nan), emd.get("COV", nan), emd.get("MMD", nan), r.get("morph_ks_mean", nan),
                        critic.get("accuracy", nan), critic.get("n_per_side", 0),
                        mem.get("ratio_median", nan), mem.get("copies", -1)])
    tables = {"realism": (list(TABLE_COLUMNS), realism)}
    morph_rows = [(r.get("label", k), r["morphometrics"]) for k, r in report["rows"].items() if r.get("morphometrics")]
    if morph_rows:
        names = list(morph_rows[0][1])
        columns = ["set"] + [f"{name} {what}" for name in names for what in ("mean", "W1", "KS")]
        tables["morphometrics"] = (columns, [[label] + [m[k][f] for k in names for f in ("mean_generated", "W1", "KS")]
                                             for label, m in morph_rows])
    return tables


def log_to_wandb(report: dict, request: Request, log=_log) -> str | None:
    """Log the written report's tables, plots and headline numbers to a wandb run in ``request.out``."""
    tables = report_tables(report)
    columns, rows = tables["realism"]
    keys = list(report["rows"])
    summary = {f"{key}/{col}": value for key, row in zip(keys, rows) for col, value in zip(columns[1:], row[1:])}
    config = {"settings": report["settings"], "reference": report["reference"], "samples": report["samples"]}
    where = log_report(request.out, tables, {name.removesuffix(".png"): request.out / name for name in PLOTS},
                       request.wandb, config=config, summary=summary, job_type="evaluate-generation",
                       name=f"evaluate {request.out.name}")
    if where:
        log(f"wandb run in {where}" + (f" (upload: wandb sync {where})" if request.wandb == "offline" else ""))
    return where


def plots(out: Path, rows: dict, ref_feats, ref_morph, reference, radius_um: float):
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
    if ref_morph is not None:
        hist_grid("morphometrics.png", MORPH_NAMES, ref_morph, {r["label"]: r["_morph"] for r in rows.values() if "_morph" in r},
                  "Morphometrics of skeletonised fragments")

    # fragments: reference on top, then each set; each cloud seen along its smallest principal axis
    sets = [("reference (held-out)", reference)] + [(r["label"], r["_clouds"]) for r in rows.values()]
    k = 6
    fig, axes = plt.subplots(len(sets), k, figsize=(1.9 * k, 2.0 * len(sets)))
    axes = np.atleast_2d(axes)
    circle = np.linspace(0, 2 * np.pi, 100)
    for i, (label, clouds) in enumerate(sets):
        for j in range(k):
            ax = axes[i, j]
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlim(-1.1, 1.1), ax.set_ylim(-1.1, 1.1), ax.set_aspect("equal")
            ax.plot(np.cos(circle), np.sin(circle), color="0.8", lw=0.5)  # the crop sphere's outline
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

    if any("_ratio" in r for r in rows.values()):
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


def _cache_key(request: Request, settings: Settings, manifest: dict) -> str:
    """What the reference-side work and the baseline rows depend on."""
    import hashlib

    from mogen import __version__

    payload = {k: str(v) for k, v in dataclasses.asdict(settings).items()}
    payload.update(reference=str(request.reference), split=request.split, train_split=request.train_split,
                   manifest=manifest, version=f"{__version__}/{CACHE_FORMAT}")
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ----------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Settings()
    p.add_argument("--samples", type=Path, help="samples.npz written by sample.py (omit to score --baselines only)")
    p.add_argument("--reference", type=Path, required=True, help="dataset directory (manifest.json + splits)")
    p.add_argument("--split", default="test", help="held-out split to compare with")
    p.add_argument("--train-split", default="train", help="split the generator was trained on (feature scale, memorisation, baselines)")
    p.add_argument("--n", type=int, default=d.n, help="clouds per set (capped by the samples and the reference split)")
    p.add_argument("--out", type=Path, required=True, help="report directory (must be empty or new, unless --force)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out, replacing report files")
    p.add_argument("--baselines", action="store_true", help="also score real train fragments, a memoriser and two floors")
    p.add_argument("--cd-points", type=int, default=d.cd_points, help="random points per cloud for the Chamfer matrices")
    p.add_argument("--emd-n", type=int, default=d.emd_n, help="clouds per set for the EMD metrics (0: skip EMD)")
    p.add_argument("--emd-points", type=int, default=d.emd_points, help="random points per cloud for EMD (exact assignment, O(P^3))")
    p.add_argument("--morph-n", type=int, default=d.morph_n, help="clouds per set for morphometrics")
    p.add_argument("--mem-n", type=int, default=d.mem_n, help="clouds per set for the memorisation check")
    p.add_argument("--train-n", type=int, default=d.train_n,
                   help="training fragments used (random subset): feature-MMD scale, memorisation pool, baselines")
    p.add_argument("--sigma", type=float, default=d.sigma, help="RBF bandwidth of feature-MMD (MoGen: 10)")
    p.add_argument("--voxel-um", type=float, default=d.voxel_um, help="skeletonisation voxel (µm)")
    p.add_argument("--prune-um", type=float, default=d.prune_um, help="prune terminal skeleton branches shorter than this (µm)")
    p.add_argument("--copy-quantile", type=float, default=d.copy_quantile,
                   help="copy if nearest-train CD < this quantile of real held-out fragments' nearest-train CDs")
    p.add_argument("--jitter", type=float, default=d.jitter, help="memoriser baseline jitter (unit-ball units)")
    p.add_argument("--allow-overlap", action="store_true", help="score even if the generator was trained on reference cells")
    p.add_argument("--allow-foreign-generator", action="store_true",
                   help="score samples of a generator trained on another dataset (cells are then compared by id only)")
    p.add_argument("--cache", type=Path, default=None,
                   help="directory to keep the reference-side work and baseline rows in, so scoring another "
                        "samples file against the same data and settings only scores the new set")
    p.add_argument("--critic-n", type=int, default=d.critic_n,
                   help="clouds per side for the learned two-sample critic (one small network trained per row; 0: skip it)")
    p.add_argument("--critic-steps", type=int, default=d.critic_steps, help="training steps of each critic")
    p.add_argument("--critic-points", type=int, default=d.critic_points, help="points per cloud the critic sees")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--wandb", choices=WANDB_MODES, default="off",
                   help="also log the tables and plots to a wandb run in --out (offline: no account or network; "
                        "`wandb sync OUT/wandb/offline-run-*` uploads it later)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="processes for features, EMD, morphometrics and memorisation (default: the cores this "
                        "process may use, here %(default)s; the numbers do not depend on it)")


def evaluate(request: Request, settings: Settings, log=_log) -> dict:
    """Score the request's samples and/or baselines; write the report files; return the report."""
    t_start = time.perf_counter()
    check_request(request, settings)
    data = load_reference(request, settings)
    settings = dataclasses.replace(settings, radius_um=float(data.manifest["radius_um"]))
    samples, meta = None, {}
    if request.samples is not None:
        samples, meta = load_samples(request.samples, request.reference, request.split, data.manifest,
                                     request.allow_overlap, request.allow_foreign, log)
    n = min(settings.n, data.fragments, *([len(samples)] if samples is not None else []))
    if n < settings.n:
        log(f"note: n = {n} clouds per set (asked {settings.n}; reference has {data.fragments}"
            + (f", samples {len(samples)})" if samples is not None else ")"))
    settings = dataclasses.replace(settings, n=n)
    reference = draw_reference(data.reference, n, settings.seed)
    log(f"reference: {request.reference} [{request.split}] n={n}; train fragments used {len(data.train)} of "
        f"{data.train_fragments}")

    cache_file = cached = None
    if request.cache is not None:
        cache_file = request.cache / f"eval-generation-{_cache_key(request, settings, data.manifest)}.pt"
        if cache_file.is_file():
            cached = torch.load(cache_file, weights_only=False)
            log(f"reusing reference-side work and baseline rows from {cache_file}")
    scorer = Scorer(reference, data.train, settings, log, state=cached["scorer"] if cached else None,
                    workers=request.workers)
    sets: dict[str, tuple[str, np.ndarray]] = {}
    if samples is not None:
        # random order too: the subsets take the first rows, and sample.py may write in condition order
        pick = np.random.default_rng(settings.seed + 2).permutation(len(samples))[:n]
        label = "generated (clipped to the ball)" if meta.get("clip_ball") else "generated"
        sets["generated"] = (label, samples[pick])
    if request.baselines:
        try:
            baselines = make_baselines(reference, data.train, n, seed=settings.seed, jitter=settings.jitter)
        except ValueError as e:
            raise UsageError(f"{request.reference}: {e}") from None
        sets.update({key: (BASELINE_LABELS[key], clouds) for key, clouds in baselines.items()})
    cached_rows = cached["rows"] if cached else {}
    rows = score_sets(scorer, sets, cached_rows, log)
    if cache_file is not None:
        keep = {k: {f: v for f, v in r.items() if f != "_clouds"} for k, r in rows.items() if k != "generated"}
        keep = {**cached_rows, **keep}
        if cached is None or set(keep) != set(cached_rows):
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache_file) as tmp:  # a later report reads it: never half-written
                torch.save({"scorer": scorer.state(), "rows": keep}, tmp)
            log(f"cached reference-side work and baseline rows in {cache_file}")

    warnings = [conditioning_warning(meta, request.split)] if meta.get("conditioned_on_reference") else []
    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "format": "mogen-eval-generation/2",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "warnings": warnings,
        "reference": {
            "dir": str(request.reference), "split": request.split, "neurons": data.neurons, "fragments": data.fragments,
            "points_per_fragment": int(data.manifest["points_per_fragment"]), "radius_um": settings.radius_um,
            "train_split": request.train_split, "train_fragments": data.train_fragments,
            "train_fragments_used": len(data.train),
        },
        "samples": meta,
        "settings": dataclasses.asdict(settings),
        "rows": rows,
        "timings": {k: round(v, 2) for k, v in scorer.timings.items()},
    }
    log("writing plots ...")
    plots(out, rows, scorer.ref_features, scorer.ref_morph, reference, settings.radius_um)
    report["timings"]["total_s"] = time.perf_counter() - t_start
    write_json(out / "report.json", _jsonable(report))
    write_text(out / "report.md", markdown(report))
    log(f"wrote {out}/report.json, report.md and plots")
    if request.wandb != "off":
        log_to_wandb(_jsonable(report), request, log)
    return report


def outputs(args) -> dict:
    """What this run writes, locked for its duration by :func:`mogen.cli.run_command`."""
    return {"--out": Path(args.out)}


def run(args) -> int:
    request, settings = settings_from_args(args)
    if request.threads:
        torch.set_num_threads(request.threads)
    report = evaluate(request, settings)
    print(markdown(report))
    return 0


def main(argv=None) -> int:
    from mogen.cli import run_command

    return run_command("python -m mogen.evaluate.generation", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
