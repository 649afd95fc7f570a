"""Reconstruction benchmark: do synthetic neurons, rendered into segmentation training data, cut errors per mm?

    python -m mogen.evaluate.augment --real DATASET --synthetic SAMPLES.npz --out DIR    (= mogen benchmark)
    python -m mogen.evaluate.augment --quick --real DATASET [--synthetic SAMPLES.npz] --out DIR

One path for every arm (mogen.augment.volume):
  1. pack: fragments of the neurons of a split, at random rotations and positions, into a block
     as dense as random packing allows (a placement is rejected when too much of it would lie
     inside objects already there), so neurites of different cells touch often;
  2. render every object with the one renderer (surface points -> solid) into a label volume,
     written as zarr with its voxel size and the cells it holds (DIR/volumes);
  3. over-segment it as a segmenter fails (block cuts + watershed splits at thin necks);
  4. candidates = touching supervoxel pairs; each is cut into a unit-ball view of the two pieces'
     surface around the contact — training examples and test candidates by the same code;
  5. arms differ only in the training volumes: a share (--share) of their real objects is
     replaced, at the same placements, by the arm's objects (mogen.augment.arms: synthetic =
     generated fragments; controls = jittered real, elastically deformed real, random-walk);
  6. a point-cloud plausibility classifier (mogen.evaluate.classifier) learns true from false
     contacts; its agglomeration threshold is the one with the fewest errors on the validation
     volumes; on the test volumes (other cells) supervoxels are joined by score and residual
     split + merge errors are counted per mm of cable (mogen.evaluate.replay), with VOI and
     adapted Rand error of the agglomerated segmentation.

Runs: every arm x seed (classifier training) x packing (independent volumes). Each arm's mean
and 95% CI resample packings and seeds within them (two-level bootstrap); its reduction vs real
is paired on (packing, seed), with the minimum detectable effect (2.8 x its standard error).
DIR gets report.json, report.md, augment.png. Finished volumes and runs are cached (DIR/cache),
so a stopped run resumes and new seeds or arms reuse what exists. With ``--wandb offline`` (or
``online``) the report's tables (per arm, per run) and plot also go to a wandb run in DIR/wandb.

Leak checks go through mogen.data.check_generator (cells, not file names): the generator must
not have seen validation or test cells, and must have been trained on --real unless
--allow-foreign-generator. --test-data DIR (a folder made by `mogen prepare`) replaces the test
split by all of DIR's cells; none of them may be a classifier training cell.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing as mp
import os
import pickle
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mogen.augment.arms import ARMS, ArmSources
from mogen.augment.volume import MAX_VOXELS, Obj, VolumeSpec, cut_candidates, render_volume
from mogen.data import SPLITS, check_generator, read_manifest, read_split
from mogen.data.dataset import cell_of
from mogen.errors import UsageError
from mogen.outputs import atomic_path, write_json, write_text
from mogen.runlog import WANDB_MODES, log_report

# bump when what a cached volume / a cached run holds changes
VOLUME_VERSION = 1
RUN_VERSION = 2


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Every setting of one experiment (see ``add_arguments`` for their meaning)."""

    real: str
    out: str
    synthetic: str | None = None
    test_data: str | None = None
    arms: tuple[str, ...] = ("real", "synthetic", "jitter", "elastic", "random-walk")
    share: float = 0.1
    seeds: int = 10
    packings: int = 3
    train_volumes: int = 6
    val_volumes: int = 2
    test_volumes: int = 3
    volume: VolumeSpec = field(default_factory=VolumeSpec)
    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-3
    workers: int = 2
    data_seed: int = 0
    allow_foreign_generator: bool = False
    force: bool = False
    quick: bool = False

    def identity(self) -> dict:
        """Everything that decides the report (not how it is scheduled: workers)."""
        return _identity(self)


@functools.lru_cache(maxsize=8)
def _identity(s: Settings) -> dict:
    from mogen.data import manifest_hash

    d = json.loads(json.dumps(asdict(s), default=str))
    for k in ("out", "workers", "force", "quick"):
        d.pop(k)
    d["real"] = manifest_hash(s.real)
    d["test_data"] = manifest_hash(s.test_data) if s.test_data else None
    d["synthetic"] = _file_sha(Path(s.synthetic)) if s.synthetic else None
    return d


def _volume_key(s: Settings, packing: int, split: str, index: int, arm: str) -> str:
    """Cache key of one volume of one arm: only what decides it (not seeds, other arms, counts)."""
    i = s.identity()
    return _key(VOLUME_VERSION, i["real"], i["test_data"], i["volume"], s.share, s.data_seed, packing, split, index, arm,
                i["synthetic"] if ARMS[arm].needs_samples else None)


def _run_key(s: Settings, arm: str, seed: int, packing: int) -> str:
    i = s.identity()
    return _key(RUN_VERSION, VOLUME_VERSION, i["real"], i["test_data"], i["volume"], s.share, s.data_seed, s.train_volumes,
                s.val_volumes, s.test_volumes, s.steps, s.batch_size, s.lr, arm, seed, packing,
                i["synthetic"] if ARMS[arm].needs_samples else None)


# The full experiment, and --quick: the whole pipeline in a few minutes on 2 cores.
PRESETS = {
    "full": dict(seeds=10, packings=3, train_volumes=6, val_volumes=2, test_volumes=3, steps=1000),
    "quick": dict(seeds=1, packings=1, train_volumes=2, val_volumes=1, test_volumes=1, steps=150,
                  volume=dict(extent_um=6.0, voxel_nm=(125.0, 125.0, 125.0), objects=20, view_um=2.5, points=128)),
}


# ----------------------------------------------------------------------------- statistics
def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a true contact outscores a false one (Mann-Whitney U / n_pos n_neg).

    >>> auroc(np.array([0.9, 0.8]), np.array([0.1, 0.85]))
    0.75
    """
    from scipy.stats import mannwhitneyu

    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def _bootstrap_index(shape: tuple[int, int], n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two-level resampling of a [packings, seeds] table: packings with replacement, then seeds
    within each drawn packing. Returns row and column indices [n_boot, P, S]."""
    P, S = shape
    rows = rng.integers(P, size=(n_boot, P, 1)).repeat(S, 2)
    cols = rng.integers(S, size=(n_boot, P, S))
    return rows, cols


def _table(x) -> np.ndarray:
    x = np.asarray(x, float)
    return x[None] if x.ndim == 1 else x


def mean_ci(values, n_boot: int = 10000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% bootstrap CI of a [packings, seeds] table (a 1-D array is one packing).

    Packings are resampled, then seeds within them, so the interval includes the spread
    between independent volumes, not only between training seeds.

    >>> m, lo, hi = mean_ci(np.full((3, 4), 2.0)); (m, lo, hi)
    (2.0, 2.0, 2.0)
    """
    x = _table(values)
    rows, cols = _bootstrap_index(x.shape, n_boot, np.random.default_rng(seed))
    boot = x[rows, cols].mean(axis=(1, 2))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(x.mean()), float(lo), float(hi)


def paired_reduction(arm, base, n_boot: int = 10000, seed: int = 0) -> dict:
    """Relative reduction 1 − mean(arm)/mean(base) of two [packings, seeds] tables paired cell by
    cell, with a 95% two-level bootstrap CI, its standard error, and the minimum detectable
    effect (2.8 standard errors: 80% power at two-sided α = 0.05). Positive = fewer errors.

    >>> r = paired_reduction(np.full((3, 2), 0.9), np.ones((3, 2))); round(r["reduction"], 3), round(r["ci"][0], 3)
    (0.1, 0.1)
    """
    a, b = _table(arm), _table(base)
    if a.shape != b.shape:
        raise ValueError(f"paired tables differ in shape: {a.shape} vs {b.shape}")
    rows, cols = _bootstrap_index(a.shape, n_boot, np.random.default_rng(seed))
    bm = b[rows, cols].mean(axis=(1, 2))
    r = 1 - a[rows, cols].mean(axis=(1, 2)) / np.where(bm > 0, bm, np.nan)
    lo, hi = np.nanpercentile(r, [2.5, 97.5])
    se = float(np.nanstd(r))
    point = float(1 - a.mean() / b.mean()) if b.mean() > 0 else float("nan")
    return dict(reduction=point, ci=[float(lo), float(hi)], se=se, mde=2.8 * se)


# ----------------------------------------------------------------------------- inputs
@dataclass
class Pool:
    """Fragments that objects of one split are drawn from: ``(dataset, split)`` parts, row, cell."""

    parts: list[tuple[str, str]]
    part: np.ndarray
    row: np.ndarray
    cell: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    @property
    def cells(self) -> list[str]:
        return sorted(set(self.cell.tolist()))

    @classmethod
    def from_splits(cls, parts: list[tuple[str, str]], keep_cells: set[str] | None = None) -> "Pool":
        part, row, cell = [], [], []
        for k, (root, split) in enumerate(parts):
            sp = read_split(root, split)
            cells = cell_of(sp.manifest)
            c = np.array([cells.get(n, n) for n in sp.neuron_id.tolist()], dtype=str)
            rows = np.arange(len(sp)) if keep_cells is None else np.flatnonzero(np.isin(c, sorted(keep_cells)))
            part.append(np.full(len(rows), k))
            row.append(rows)
            cell.append(c[rows])
        return cls(parts, np.concatenate(part), np.concatenate(row), np.concatenate(cell))


@dataclass
class Inputs:
    """Checked inputs: the three pools, the generated fragments and what was checked."""

    radius_um: float
    n_points: int
    pools: dict[str, Pool]
    samples: np.ndarray | None
    notes: dict


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_inputs(s: Settings) -> Inputs:
    """Read and check every input before any work; :class:`UsageError` / :class:`DataError` otherwise."""
    from mogen.samples import read_samples

    manifest = read_manifest(s.real)
    R, n_points = float(manifest["radius_um"]), int(manifest["points_per_fragment"])
    cells = cell_of(manifest)
    split_cells = {sp: sorted({cells.get(str(n), str(n)) for n in manifest["splits"][sp]["neurons"]}) for sp in SPLITS}
    notes = {}
    train_cells, val_cells = split_cells["train"], split_cells["val"]
    if not val_cells:
        if len(train_cells) < 3:
            raise UsageError(f"{s.real}: no validation cells and only {len(train_cells)} training cells; "
                             "need 3 to hold some out for the agglomeration threshold")
        k = max(1, round(0.15 * len(train_cells)))
        val_cells = sorted(np.random.default_rng(s.data_seed).choice(train_cells, k, replace=False).tolist())
        train_cells = [c for c in train_cells if c not in val_cells]
        notes["val"] = f"{k} train cell(s) of {s.real} held out (it has no val split); never used to train the classifier"
    pools = {"train": Pool.from_splits([(s.real, "train")], set(train_cells)),
             "val": Pool.from_splits([(s.real, "val" if split_cells["val"] else "train")], set(val_cells))}
    if s.test_data:
        tm = read_manifest(s.test_data)
        if not np.isclose(float(tm["radius_um"]), R) or int(tm["points_per_fragment"]) != n_points:
            raise UsageError(f"--test-data {s.test_data}: fragments of R = {tm['radius_um']} µm with "
                             f"{tm['points_per_fragment']} points, but {s.real} has R = {R} µm with {n_points}; "
                             "prepare both with the same --radius-um and --points")
        pools["test"] = Pool.from_splits([(s.test_data, sp) for sp in SPLITS if tm["splits"][sp]["neurons"]])
        shared = sorted(set(pools["test"].cells) & (set(train_cells) | set(val_cells)))
        if shared:
            raise UsageError(f"--test-data {s.test_data} holds cells the classifier trains or is tuned on: {shared[:8]}")
        notes["test"] = f"all {len(pools['test'].cells)} cells of {s.test_data} (replaces the test split)"
    else:
        pools["test"] = Pool.from_splits([(s.real, "test")])
    for name, pool in pools.items():
        if len(pool) == 0:
            raise UsageError(f"the {name} split has no fragments to pack ({s.real})")
    samples = None
    if s.synthetic:
        smp = read_samples(s.synthetic, radius_um=R, points_per_cloud=n_points)
        prov = smp.provenance
        if prov.get("train_neurons") is None and prov.get("train_cells") is None:
            raise UsageError(f"refusing {s.synthetic}: it records no training cells, so it cannot be checked "
                             f"against the validation and test cells")
        what = f"the generator behind {s.synthetic}"
        checks = {"real": check_generator(prov, s.real, held_out=("val", "test"), allow_foreign=s.allow_foreign_generator,
                                          what=what)}
        if s.test_data:  # another dataset: compared by cell, every split of it held out
            checks["test_data"] = check_generator(prov, s.test_data, held_out=SPLITS, allow_foreign=True, what=what)
        seen = sorted(set(prov.get("train_cells") or [cells.get(str(n), str(n)) for n in prov.get("train_neurons") or []])
                      & set(val_cells))
        if seen:  # only when val cells were held out of the train split the generator learnt from
            notes["val_cells_seen_by_generator"] = seen
        notes["generator"] = dict(checkpoint=str(prov.get("checkpoint", "")), pretrained=prov.get("pretrained"),
                                  samples=len(smp), checks=checks)
        samples = smp.points_unit
    return Inputs(R, n_points, pools, samples, notes)


# ----------------------------------------------------------------------------- workers
_WORKER: dict = {}  # filled in each worker process by _init_worker (and in-process when workers = 1)


def _init_worker(state: dict) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.clear()
    _WORKER.update(state)


def _split(root: str, split: str):
    key = ("split", root, split)
    if key not in _WORKER:
        _WORKER[key] = read_split(root, split)
    return _WORKER[key]


def _imap(fn, jobs: list, state: dict, workers: int, desc: str):
    """Results of ``fn`` over ``jobs`` as they finish, on ``workers`` processes whose state comes
    from :func:`_init_worker` (so nothing depends on what a module global held before a fork)."""
    from tqdm import tqdm

    if not jobs:
        return
    if workers <= 1:
        _init_worker(state)
        yield from (fn(j) for j in tqdm(jobs, desc=desc))
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker, initargs=(state,)) as pool:
        yield from tqdm(pool.imap_unordered(fn, jobs), total=len(jobs), desc=desc)


def _volume_job(job: dict) -> dict:
    """Render one volume (and, for training volumes, each arm's version), write it, cut it."""
    from mogen.augment.io import write_volume
    from mogen.evaluate.replay import VolumeTruth

    w = _WORKER
    t0 = time.time()
    spec: VolumeSpec = w["spec"]
    pool: Pool = w["pools"][job["split"]]
    R = w["radius_um"]
    objs = []
    for i in job["members"]:
        root, split = pool.parts[pool.part[i]]
        objs.append(Obj(np.asarray(_split(root, split).points[pool.row[i]], float) * R, str(pool.cell[i]), "real",
                        f"{root}/{split}#{pool.row[i]}"))
    base = render_volume(objs, spec, job["seed"])
    out = dict(split=job["split"], packing=job["packing"], index=job["index"], arms={})
    for arm, arm_seed in job["arms"].items():
        vol = base
        if ARMS[arm].replaces:
            made = ARMS[arm].make(w["arm_sources"], len(job["slots"]), np.random.default_rng(arm_seed))
            vol = base.replaced(dict(zip(job["slots"], made)))
        cut = cut_candidates(vol.labels, vol.grid, spec, seed=job["seed"])
        meta = dict(vol.metadata(), experiment=dict(arm=arm, split=job["split"], packing=job["packing"], index=job["index"],
                                                    key=job["keys"][arm], candidates=len(cut.candidates),
                                                    false_contact_fraction=cut.candidates.false_fraction))
        path = Path(w["volumes_dir"]) / f"packing{job['packing']}" / f"{job['split']}{job['index']}-{arm}.zarr"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_volume(path, vol.labels, vol.grid.voxel_nm, vol.grid.offset_nm, supervoxels=cut.supervoxels, metadata=meta,
                     overwrite=True)
        entry = dict(views=cut.views, same=cut.candidates.same, false_fraction=cut.candidates.false_fraction,
                     objects=int(sum(p is not None for p in vol.placements)),
                     replaced=int(sum(vol.placements[k] is not None for k in job["slots"])) if ARMS[arm].replaces else 0,
                     fill=float((vol.labels > 0).mean()), path=str(path))
        if job["split"] != "train":
            entry["truth"] = VolumeTruth.build(cut.supervoxels, vol.labels, cut.candidates.edges, vol.grid.voxel_um)
        entry["seconds"] = time.time() - t0
        _save(Path(w["cache"]) / f"volume_{job['keys'][arm]}.pkl", entry)
        out["arms"][arm] = entry
    return out


def _save(path: Path, obj) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=5)


def _load(path: Path):
    with open(path, "rb") as f:
        return pickle.load(f)


def _run_job(job: dict) -> dict:
    """Train one classifier (arm, seed, packing), set its threshold on validation, count test errors."""
    from mogen.evaluate.classifier import score, train_classifier
    from mogen.evaluate.replay import best_threshold, errors_at

    w = _WORKER
    t0 = time.time()
    views, same = w["train"][(job["packing"], job["arm"])]
    model = train_classifier((views, same.astype(np.float32)), None, share=0.0, steps=w["steps"], batch_size=w["batch_size"],
                             lr=w["lr"], seed=job["seed"])
    train_s = time.time() - t0
    val, test = w["val"][job["packing"]], w["test"][job["packing"]]
    val_scores = [score(model, v) for v, _ in val]
    threshold, val_errors = best_threshold([t for _, t in val], val_scores)
    test_scores = [score(model, v) for v, _ in test]
    res = errors_at([t for _, t in test], test_scores, threshold, voxels=True)
    s, y = np.concatenate(test_scores), np.concatenate([t.same for _, t in test])
    out = dict(job, threshold=threshold, val_errors_per_mm=val_errors, auroc=auroc(s[y], s[~y]), train_examples=len(same),
               train_seconds=train_s, seconds=time.time() - t0, **res)
    write_json(Path(w["cache"]) / f"run_{job['key']}.json", out, indent=None)  # read back by later runs
    return out


# ----------------------------------------------------------------------------- experiment
def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan_volumes(s: Settings, inputs: Inputs, arms: list[str]) -> list[dict]:
    """One job per volume: which fragments go in, its seed, and (training volumes) which slots each
    replacing arm fills and with which seed. Fixed by ``data_seed``, so every arm sees the same
    volumes and the same slots, and adding an arm or a seed changes no volume."""
    jobs = []
    n = s.volume.objects
    counts = {"train": s.train_volumes, "val": s.val_volumes, "test": s.test_volumes}
    for p in range(s.packings):
        for split, count in counts.items():
            pool = inputs.pools[split]
            for i in range(count):
                seed = int(np.random.SeedSequence([s.data_seed, p, SPLITS.index(split), i]).generate_state(1)[0])
                rng = np.random.default_rng(seed)
                members = rng.choice(len(pool), size=n, replace=n > len(pool)).tolist()
                slots = sorted(rng.choice(n, size=int(round(s.share * n)), replace=False).tolist()) if split == "train" else []
                arm_seeds = {"real": 0}  # one draw per registered arm (a new arm changes these: bump VOLUME_VERSION)
                if split == "train":
                    arm_seeds.update({a: int(rng.integers(2**31)) + k for k, a in enumerate(sorted(ARMS))})
                use = {a: arm_seeds[a] for a in arms if split == "train" or a == "real"}
                jobs.append(dict(packing=p, split=split, index=i, seed=seed, members=members, slots=slots, arms=use,
                                 keys={a: _volume_key(s, p, split, i, a) for a in use}))
    return jobs


def _prepare_out(s: Settings) -> tuple[Path, Path]:
    """Refuse an --out that holds something else, or another benchmark unless --force (its report is
    rewritten; its volumes and cache, keyed by what decides them, are reused where still valid)."""
    out = Path(s.out)
    record = out / "settings.json"
    identity = s.identity()
    if out.exists() and any(out.iterdir()):
        if not record.is_file():
            raise UsageError(f"--out {out} exists and was not written by this benchmark; choose another folder")
        if json.loads(record.read_text()) != identity:
            if not s.force:
                raise UsageError(f"--out {out} holds a benchmark with other settings; pass --force to replace its report "
                                 "(volumes and cached runs are keyed by what decides them, so valid ones are reused) "
                                 "or choose another folder")
    (out / "cache").mkdir(parents=True, exist_ok=True)
    (out / "volumes").mkdir(parents=True, exist_ok=True)
    write_json(record, identity)
    return out, out / "cache"


def run_experiment(s: Settings) -> dict:
    t_start = time.time()
    load_start = list(os.getloadavg())
    inputs = load_inputs(s)
    arms = [a for a in s.arms if a in ARMS]
    out, cache = _prepare_out(s)
    timings = {}

    # 1. volumes (cached per volume)
    jobs = plan_volumes(s, inputs, arms)
    results, todo, cached = [], [], 0
    for j in jobs:
        have = {a: cache / f"volume_{k}.pkl" for a, k in j["keys"].items()}
        done = {a: _load(f) for a, f in have.items() if f.is_file()}
        cached += len(done)
        results.append(dict(split=j["split"], packing=j["packing"], index=j["index"], arms=done))
        if len(done) < len(have):
            todo.append(dict(j, arms={a: v for a, v in j["arms"].items() if a not in done}))
    tr = inputs.pools["train"]
    whole = Pool.from_splits(tr.parts)  # the arms draw rows of the classifier's training cells only
    state = dict(spec=s.volume, pools=inputs.pools, radius_um=inputs.radius_um, cache=str(cache), volumes_dir=str(out / "volumes"),
                 arm_sources=ArmSources(real_points=read_split(*tr.parts[0]).points, real_cells=whole.cell,
                                        radius_um=inputs.radius_um, real_rows=tr.row, samples=inputs.samples,
                                        samples_name=Path(s.synthetic).name if s.synthetic else ""))
    t0 = time.time()
    index = {(r["packing"], r["split"], r["index"]): r for r in results}
    for r in _imap(_volume_job, todo, state, s.workers, "volumes"):
        index[(r["packing"], r["split"], r["index"])]["arms"].update(r["arms"])
    timings["volumes_s"] = time.time() - t0
    timings["volume_arms_from_cache"] = cached

    # 2. examples per (packing, arm); validation and test volumes per packing
    results.sort(key=lambda r: (r["packing"], r["split"], r["index"]))
    train, val, test = {}, {}, {}
    for r in results:
        p = r["packing"]
        if r["split"] == "train":
            for arm, e in r["arms"].items():
                train.setdefault((p, arm), []).append((e["views"], e["same"]))
        else:
            e = r["arms"]["real"]
            (val if r["split"] == "val" else test).setdefault(p, []).append((e["views"], e["truth"]))
    train = {k: (np.concatenate([v for v, _ in x]), np.concatenate([y for _, y in x])) for k, x in train.items()}
    volumes = _volume_summary(results, arms)

    # 3. classifier runs (cached per run)
    from mogen.evaluate.replay import errors_at

    run_jobs = [dict(arm=a, seed=seed, packing=p, share=s.share if ARMS[a].replaces else 0.0)
                for p in range(s.packings) for a in arms for seed in range(s.seeds)]
    for j in run_jobs:
        j["key"] = _run_key(s, j["arm"], j["seed"], j["packing"])
    runs, todo = [], []
    for j in run_jobs:
        f = cache / f"run_{j['key']}.json"
        (runs.append(json.loads(f.read_text())) if f.is_file() else todo.append(j))
    state = dict(train=train, val=val, test=test, steps=s.steps, batch_size=s.batch_size, lr=s.lr, cache=str(cache))
    t0 = time.time()
    runs += list(_imap(_run_job, todo, state, s.workers, "classifier runs"))
    timings["runs_s"] = time.time() - t0
    timings["runs_from_cache"] = len(run_jobs) - len(todo)
    timings["total_s"] = time.time() - t_start

    baselines = {}
    for name, value in (("join_none", 0.0), ("join_all", 1.0)):
        per = [errors_at([t for _, t in test[p]], [np.full(len(t.edges), value) for _, t in test[p]], 0.5, voxels=True)
               for p in range(s.packings)]
        baselines[name] = dict({k: float(np.mean([x[k] for x in per])) for k in per[0]}, per_packing=per)
    info = dict(settings=json.loads(json.dumps(asdict(s), default=str)), inputs=dict(
        radius_um=inputs.radius_um, points_per_fragment=inputs.n_points,
        cells={k: v.cells for k, v in inputs.pools.items()}, fragments={k: len(v) for k, v in inputs.pools.items()},
        notes=inputs.notes), volumes=volumes, baselines=baselines, timings=timings,
        machine=dict(cpus=os.cpu_count(), workers=s.workers, load_start=load_start, load_end=list(os.getloadavg())))
    return summarise(runs, arms, s, info)


def _volume_summary(results: list[dict], arms: list[str]) -> dict:
    """Per split (and per arm for training volumes): volumes, objects, fill, candidates, false-contact fraction."""
    out = {}
    for split in ("train", "val", "test"):
        for arm in arms if split == "train" else ["real"]:
            es = [r["arms"][arm] for r in results if r["split"] == split and arm in r["arms"]]
            if not es:
                continue
            same = np.concatenate([e["same"] for e in es])
            out[f"{split}/{arm}" if split == "train" else split] = dict(
                volumes=len(es), objects=float(np.mean([e["objects"] for e in es])),
                replaced=float(np.mean([e["replaced"] for e in es])), fill=float(np.mean([e["fill"] for e in es])),
                candidates=int(len(same)), false_contact_fraction=float((~same).mean()) if len(same) else float("nan"),
                cable_mm=float(sum(e["truth"].cable_mm for e in es)) if split != "train" else None)
    return out


METRICS = ("errors_per_mm", "split_per_mm", "merge_per_mm", "voi", "voi_split", "voi_merge", "arand", "auroc")
PAIRED = ("errors_per_mm", "voi", "arand")


def summarise(runs: list[dict], arms: list[str], s: Settings, info: dict) -> dict:
    """Per arm: each metric's mean [95% CI] over packings × seeds, and paired reductions vs real."""
    def table(arm, metric):
        t = np.full((s.packings, s.seeds), np.nan)
        for r in runs:
            if r["arm"] == arm and r["packing"] < s.packings and r["seed"] < s.seeds:
                t[r["packing"], r["seed"]] = r[metric]
        return t

    per_arm = {}
    for arm in arms:
        if np.isnan(table(arm, "errors_per_mm")).any():
            continue
        row = dict(share=s.share if ARMS[arm].replaces else 0.0, runs=s.packings * s.seeds,
                   false_contact_fraction=info["volumes"]["test"]["false_contact_fraction"],
                   train_false_contact_fraction=info["volumes"][f"train/{arm}"]["false_contact_fraction"])
        for m in METRICS:
            row[m] = mean_ci(table(arm, m))
        row["per_packing_errors_per_mm"] = np.nanmean(table(arm, "errors_per_mm"), axis=1).tolist()
        if arm != "real" and "real" in per_arm:
            row["vs_real"] = {m: paired_reduction(table(arm, m), table("real", m)) for m in PAIRED}
        per_arm[arm] = row
    return dict(info, arms=per_arm, runs=sorted(runs, key=lambda r: (r["arm"], r["packing"], r["seed"])))


# ----------------------------------------------------------------------------- report
def _ci(v, digits=3) -> str:
    m, lo, hi = v
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _pct(d) -> str:
    if d is None:
        return "—"
    return f"{-100 * d['reduction']:+.1f}% [{-100 * d['ci'][1]:+.1f}, {-100 * d['ci'][0]:+.1f}]"


def write_report(rep: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", rep, default=float)
    st, vol, b = rep["settings"], rep["volumes"], rep["baselines"]
    spec = st["volume"]
    lines = [
        "# Reconstruction benchmark", "",
        f"real `{st['real']}`; synthetic `{st['synthetic']}`; test: {rep['inputs']['notes'].get('test', 'the test split of --real')}",
        f"cells: train {len(rep['inputs']['cells']['train'])}, val {len(rep['inputs']['cells']['val'])}, "
        f"test {len(rep['inputs']['cells']['test'])}; {rep['inputs']['notes'].get('val', '')}",
        f"generator: {rep['inputs']['notes'].get('generator', 'none (no --synthetic)')}",
        f"volumes: {spec['extent_um']} µm cubes at {spec['voxel_nm']} nm, {spec['objects']} objects each; "
        f"{st['packings']} packings x ({st['train_volumes']} train, {st['val_volumes']} val, {st['test_volumes']} test); "
        f"blocks {spec['block_um']} µm, neck {spec['neck_um']} µm, view {spec['view_um']} µm, {spec['points']} points",
        f"test volumes: {vol['test']['candidates']} candidates, **false-contact fraction {vol['test']['false_contact_fraction']:.2f}**, "
        f"fill {vol['test']['fill']:.2f}, {vol['test']['cable_mm']:.2f} mm of cable; "
        f"validation {vol['val']['candidates']} candidates ({vol['val']['false_contact_fraction']:.2f} false)",
        f"baselines on test (errors/mm): join nothing {b['join_none']['errors_per_mm']:.1f}, join everything "
        f"{b['join_all']['errors_per_mm']:.1f}",
        f"classifier: {st['steps']} steps, batch {st['batch_size']}, lr {st['lr']}; share replaced {st['share']}; "
        f"{st['seeds']} seeds x {st['packings']} packings per arm",
        f"time: {rep['timings']['total_s'] / 60:.1f} min (volumes {rep['timings']['volumes_s']:.0f} s, runs "
        f"{rep['timings']['runs_s']:.0f} s; cached {rep['timings']['volume_arms_from_cache']} volumes, "
        f"{rep['timings']['runs_from_cache']} runs) on {rep['machine']['workers']} workers, {rep['machine']['cpus']} CPUs, "
        f"load {rep['machine']['load_start'][0]:.1f} -> {rep['machine']['load_end'][0]:.1f}", "",
        "Mean [95% CI, packings and seeds resampled]; Δ = change vs real, paired on (packing, seed) (negative = fewer errors); "
        "MDE = smallest |Δ| errors/mm the experiment could detect (80% power).", "",
        "| arm | share | errors/mm | split/mm | merge/mm | VOI (split+merge) | ARAND | AUROC | train false contacts | Δ errors/mm | MDE | Δ VOI | Δ ARAND |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, r in rep["arms"].items():
        vs = r.get("vs_real", {})
        mde = f"±{100 * vs['errors_per_mm']['mde']:.1f}%" if vs else "—"
        lines.append(f"| {arm} | {r['share']:.2f} | {_ci(r['errors_per_mm'], 2)} | {_ci(r['split_per_mm'], 2)} | "
                     f"{_ci(r['merge_per_mm'], 2)} | {_ci(r['voi'])} | {_ci(r['arand'])} | {_ci(r['auroc'])} | "
                     f"{r['train_false_contact_fraction']:.2f} | {_pct(vs.get('errors_per_mm'))} | {mde} | "
                     f"{_pct(vs.get('voi'))} | {_pct(vs.get('arand'))} |")
    write_text(out / "report.md", "\n".join(lines) + "\n")
    _plot(rep, out / "augment.png")


def _plot(rep: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(rep["arms"])
    rows = [rep["arms"][a] for a in arms]
    colours = ["0.45" if a == "real" else ("C3" if a == "synthetic" else "C0") for a in arms]
    x = np.arange(len(arms))

    def bars(ax, metric, title):
        m = np.array([r[metric][0] for r in rows])
        err = np.nan_to_num(np.array([[r[metric][0] - r[metric][1], r[metric][2] - r[metric][0]] for r in rows]).T)
        ax.bar(x, m, yerr=err, capsize=4, color=colours)
        ax.set_xticks(x, arms, rotation=20)
        ax.set_title(title)

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.6))
    bars(axes[0], "errors_per_mm", "residual errors per mm (test volumes)")
    for key, style in (("join_none", "--"), ("join_all", ":")):
        axes[0].axhline(rep["baselines"][key]["errors_per_mm"], color="k", ls=style, lw=1, label=key.replace("_", " "))
    axes[0].legend(fontsize=8)
    # paired change vs real, with MoGen's reference
    ax = axes[1]
    others = [(i, a) for i, a in enumerate(arms) if "vs_real" in rep["arms"][a]]
    for i, a in others:
        d = rep["arms"][a]["vs_real"]["errors_per_mm"]
        ax.errorbar([i], [-100 * d["reduction"]], yerr=[[100 * (d["ci"][1] - d["reduction"])], [100 * (d["reduction"] - d["ci"][0])]],
                    fmt="o", color=colours[i], capsize=5, ms=8)
    ax.axhline(0, color="k", lw=1)
    ax.axhline(-4.4, color="C2", ls="--", lw=1, label="MoGen: −4.4%")
    ax.set_xticks(x, arms, rotation=20)
    ax.set_ylabel("% change in errors/mm vs real")
    ax.set_title("paired change vs real (95% CI)")
    ax.legend(fontsize=8)
    bars(axes[2], "voi", "VOI split + merge (bits)")
    # packing-to-packing spread
    ax = axes[3]
    for i, r in enumerate(rows):
        pp = r["per_packing_errors_per_mm"]
        ax.plot(np.full(len(pp), i) + np.linspace(-0.15, 0.15, len(pp)), pp, "o", color=colours[i])
    ax.set_xticks(x, arms, rotation=20)
    ax.set_title("errors/mm per packing (mean over seeds)")
    fig.suptitle(f"false-contact fraction in test volumes: {rep['volumes']['test']['false_contact_fraction']:.2f}; "
                 f"{rep['settings']['seeds']} seeds x {rep['settings']['packings']} packings", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


ARM_COLUMNS = ("arm", "share", "runs") + tuple(f"{m}{part}" for m in METRICS for part in ("", "_lo", "_hi")) + tuple(
    f"vs_real_{m}{part}" for m in PAIRED for part in ("", "_lo", "_hi", "_mde"))
RUN_COLUMNS = ("arm", "packing", "seed", "share", "threshold", "auroc", "errors_per_mm", "splits", "merges", "cable_mm",
               "train_examples", "seconds")


def report_tables(rep: dict) -> dict[str, tuple[list[str], list[list]]]:
    """The report's tables as ``{name: (columns, rows)}``: ``arms`` (mean, 95% CI and the paired
    change vs real, as reductions: positive = fewer errors; NaN for real itself) and ``runs``
    (one row per classifier run). What ``--wandb`` logs."""
    nan = float("nan")
    arms = []
    for arm, r in rep["arms"].items():
        row = [arm, r["share"], r["runs"]] + [float(v) for m in METRICS for v in r[m]]
        for m in PAIRED:
            d = r.get("vs_real", {}).get(m)
            row += [d["reduction"], d["ci"][0], d["ci"][1], d["mde"]] if d else [nan] * 4
        arms.append(row)
    runs = [[r.get(c, nan) for c in RUN_COLUMNS] for r in rep["runs"]]
    return {"arms": (list(ARM_COLUMNS), arms), "runs": (list(RUN_COLUMNS), runs)}


def log_to_wandb(rep: dict, out: Path, mode: str) -> str | None:
    """Log a written report's tables, plot and per-arm headline numbers to a wandb run in ``out``."""
    summary = {f"{arm}/{m}": r[m][0] for arm, r in rep["arms"].items() for m in METRICS}
    summary.update({f"{arm}/vs_real_errors_per_mm": r["vs_real"]["errors_per_mm"]["reduction"]
                    for arm, r in rep["arms"].items() if "vs_real" in r})
    config = {"settings": rep["settings"], "inputs": rep["inputs"], "machine": rep["machine"]}
    where = log_report(out, report_tables(rep), {"augment": out / "augment.png"}, mode, config=config, summary=summary,
                       job_type="benchmark", name=f"benchmark {out.name}")
    if where:
        print(f"wandb run in {where}" + (f" (upload: wandb sync {where})" if mode == "offline" else ""), file=sys.stderr)
    return where


# ----------------------------------------------------------------------------- CLI
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    full, quick = PRESETS["full"], PRESETS["quick"]
    d, dq = VolumeSpec(), VolumeSpec(**quick["volume"])

    p.add_argument("--real", required=True, help="dataset folder from `mogen prepare`: its train cells fill the training "
                                                 "volumes, its val cells set the threshold, its test cells are scored")
    p.add_argument("--synthetic", default=None, help="samples.npz from sample.py (generator trained on --real's train split); "
                                                     "without it the synthetic arm is left out")
    p.add_argument("--test-data", default=None, metavar="DIR",
                   help="a folder from `mogen prepare` whose cells (all splits) replace --real's test split")
    p.add_argument("--out", required=True, help="output folder (report.json, report.md, augment.png, volumes/, cache/)")
    p.add_argument("--quick", action="store_true",
                   help="tiny volumes, few steps, 1 seed, 1 packing: the whole pipeline in a few minutes (options given "
                        "explicitly still win)")
    p.add_argument("--arms", nargs="+", default=argparse.SUPPRESS, choices=sorted(ARMS),
                   help="arms to run (default: all; synthetic only with --synthetic). " +
                        "; ".join(f"{a.name}: {a.help}" for a in ARMS.values()))
    p.add_argument("--share", type=float, default=0.1, help="share of each training volume's objects an arm replaces")
    q = argparse.SUPPRESS
    for name, key, typ, text in (("--seeds", "seeds", int, "classifier training seeds per arm and packing"),
                                 ("--packings", "packings", int, "independent sets of volumes"),
                                 ("--train-volumes", "train_volumes", int, "training volumes per packing"),
                                 ("--val-volumes", "val_volumes", int, "validation volumes per packing"),
                                 ("--test-volumes", "test_volumes", int, "test volumes per packing"),
                                 ("--steps", "steps", int, "classifier training steps")):
        p.add_argument(name, type=typ, default=q, help=f"{text} (default {full[key]}; --quick {quick[key]})")
    for name, key, typ, text in (("--extent", "extent_um", float, "edge of each cubic volume, µm"),
                                 ("--objects", "objects", int, "objects packed per volume"),
                                 ("--view", "view_um", float, "radius of the classifier's view around a contact, µm"),
                                 ("--points", "points", int, "points per view")):
        p.add_argument(name, type=typ, default=q, help=f"{text} (default {getattr(d, key)}; --quick {getattr(dq, key)})")
    p.add_argument("--voxel-size", type=float, nargs=3, default=q, metavar=("Z", "Y", "X"),
                   help=f"voxel size in nm (default {' '.join(f'{v:g}' for v in d.voxel_nm)}; --quick "
                        f"{' '.join(f'{v:g}' for v in dq.voxel_nm)})")
    p.add_argument("--max-overlap", type=float, default=q,
                   help=f"share of an object's points allowed inside objects already placed (default {d.max_overlap})")
    p.add_argument("--block", type=float, default=q, help=f"segmentation block edge, µm; 0 = no block cuts (default {d.block_um})")
    p.add_argument("--neck", type=float, default=q, help=f"watershed seed height, µm; 0 = no neck splits (default {d.neck_um})")
    p.add_argument("--batch-size", type=int, default=32, help="classifier batch size")
    p.add_argument("--lr", type=float, default=2e-3, help="classifier learning rate")
    p.add_argument("--workers", type=int, default=2, help="worker processes (one torch thread each)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of packings, held-out val cells and replaced slots")
    p.add_argument("--allow-foreign-generator", action="store_true",
                   help="accept a generator trained on another dataset than --real (its cells are then compared by id)")
    p.add_argument("--force", action="store_true",
                   help="replace an earlier benchmark with other settings in --out (its report; volumes and runs still valid are reused)")
    p.add_argument("--wandb", choices=WANDB_MODES, default="off",
                   help="also log the report's tables and plot to a wandb run in --out (offline: no account or network; "
                        "`wandb sync OUT/wandb/offline-run-*` uploads it later)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the command line: the preset (full or --quick), then every option given."""
    preset = dict(PRESETS["quick" if args.quick else "full"])
    vol = dict(preset.pop("volume", {}))
    for opt, key in (("extent", "extent_um"), ("voxel_size", "voxel_nm"), ("objects", "objects"), ("max_overlap", "max_overlap"),
                     ("block", "block_um"), ("neck", "neck_um"), ("view", "view_um"), ("points", "points")):
        if hasattr(args, opt):  # given on the command line (the default is "not there")
            vol[key] = tuple(getattr(args, opt)) if opt == "voxel_size" else getattr(args, opt)
    if "voxel_nm" in vol:
        vol["voxel_nm"] = tuple(float(v) for v in vol["voxel_nm"])
    for key in ("seeds", "packings", "train_volumes", "val_volumes", "test_volumes", "steps"):
        if hasattr(args, key):
            preset[key] = getattr(args, key)
    arms = tuple(args.arms) if hasattr(args, "arms") else tuple(a for a in ARMS if a != "synthetic" or args.synthetic)
    return Settings(real=args.real, out=args.out, synthetic=args.synthetic, test_data=args.test_data, arms=arms,
                    share=args.share, volume=VolumeSpec(**vol), batch_size=args.batch_size, lr=args.lr, workers=args.workers,
                    data_seed=args.data_seed, allow_foreign_generator=args.allow_foreign_generator, force=args.force,
                    quick=args.quick, **preset)


def check_settings(s: Settings) -> None:
    """Every argument that is wrong on its own, before any file is read."""
    s.volume.check()
    if not 0 < s.share < 1:
        raise UsageError(f"--share must be in (0, 1), got {s.share}")
    if round(s.share * s.volume.objects) < 1:
        raise UsageError(f"--share {s.share} of {s.volume.objects} objects replaces none; raise --share or --objects")
    for name in ("seeds", "packings", "train_volumes", "val_volumes", "test_volumes", "steps", "batch_size", "workers"):
        if getattr(s, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(s, name)}")
    if not (np.isfinite(s.lr) and s.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {s.lr}")
    if "real" not in s.arms:
        raise UsageError("--arms must include real: every other arm is compared with it")
    if "synthetic" in s.arms and not s.synthetic:
        raise UsageError("the synthetic arm needs --synthetic SAMPLES.npz (or leave it out of --arms)")
    for path, flag in ((s.real, "--real"), (s.test_data, "--test-data")):
        if path and not Path(path).is_dir():
            raise UsageError(f"{flag} {path}: no such dataset folder (make one with `mogen prepare`)")
    if s.synthetic and not Path(s.synthetic).is_file():
        raise UsageError(f"--synthetic {s.synthetic}: no such file (write one with sample.py)")
    if s.volume.voxels > MAX_VOXELS:  # also in VolumeSpec.check; kept explicit for the message order
        raise UsageError(f"volumes of {s.volume.voxels:,} voxels do not fit in memory")


def outputs(args) -> dict:
    """What this run writes, locked for its duration by :func:`mogen.cli.run_command`."""
    return {"--out": Path(args.out)}


def run(args: argparse.Namespace) -> int:
    s = settings_from_args(args)
    check_settings(s)
    rep = run_experiment(s)
    write_report(rep, Path(s.out))
    print((Path(s.out) / "report.md").read_text())
    if args.wandb != "off":
        log_to_wandb(json.loads((Path(s.out) / "report.json").read_text()), Path(s.out), args.wandb)
    return 0


def main(argv: list[str] | None = None) -> int:
    from mogen.cli import run_command

    return run_command("python -m mogen.evaluate.augment", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
