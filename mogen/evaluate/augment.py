"""Does augmenting with generated fragments cut reconstruction errors? The augmentation experiment.

    python -m mogen.evaluate.augment --real DATASET_DIR --synthetic SAMPLES.npz [--share 0.1] [--seeds 5] --out DIR

A point-cloud classifier (``mogen.evaluate.classifier``) learns to tell true joins from false
merges (``mogen.augment.examples``). Arms differ only in what replaces a share p of each batch:

* ``real``          nothing (real merge candidates only)
* ``synthetic``     candidates built from the generator's samples (SAMPLES.npz), p ∈ ``--shares`` ∪ {``--share``}
* ``jitter``        control: candidates from jittered, elastically deformed real fragments
* ``random-walk``   control: candidates from random-walk neurons (controls at ``--control-shares``,
                    default ``--share``; as many fragments as SAMPLES.npz holds)

Every arm uses the same steps, batch size, schedule, candidate pools and seeds. The accept
threshold is set on real validation true joins (``--acceptance`` of them accepted); on the
held-out test neurons we count false merges accepted + true joins rejected, AUROC, and replay
agglomeration (``mogen.evaluate.replay``): residual split + merge errors per mm of covered cable,
with its threshold set on the validation neurons' own over-segmentation (fewest errors there, or
the same acceptance when the validation neurons never touch). Each
arm's mean and 95% CI over seeds, and its relative change vs ``real`` with a paired bootstrap CI
over seeds, go to ``DIR/report.json``, ``DIR/report.md`` and ``DIR/augment.png``. A learning curve
over the number of real training neurons (real only) shows whether the baseline is data-starved.

Splits are by neuron and come from the dataset's manifest. If it has no validation neurons (the
default navis dataset: 4 train / 0 val / 1 test), one train neuron is held out as validation and
is never used to train the classifier. The command refuses SAMPLES.npz whose generator was
trained on any validation or test neuron of the dataset (``train_neurons`` in the npz).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

from mogen.augment.examples import build_candidates, elastic_deform
from mogen.augment.random_walk import random_walk_fragments
from mogen.data import check_generator, read_split
from mogen.errors import UsageError
from mogen.samples import read_samples

ARMS = ("real", "synthetic", "jitter", "random-walk")
_STATE: dict = {}  # pools shared with forked workers


# ----------------------------------------------------------------------------- inputs
def load_split(root: Path, split: str) -> tuple[np.ndarray, dict]:
    sp = read_split(root, split)
    return sp.points, {"neuron_id": sp.neuron_id, "anchor_um": sp.anchor_um, "neurite_type": sp.neurite_type}


def generator_provenance(samples, samples_path: Path, dataset_dir: Path) -> dict:
    """Refuse a generator that saw validation or test cells; say how it relates to this dataset."""
    prov = samples.provenance
    if prov.get("train_neurons") is None and prov.get("train_cells") is None:
        raise UsageError(f"refusing: {samples_path} records no training cells, so it cannot be checked against "
                         f"{dataset_dir}'s validation/test cells")
    check = check_generator(prov, dataset_dir, held_out=("val", "test"), what=f"the generator behind {samples_path}")
    trained = sorted(map(str, prov.get("train_neurons") or []))
    return dict(generator_train_neurons=trained, same_dataset=check["same_dataset"],
                samples_manifest_hash=str(prov.get("manifest_hash", "")), checkpoint=str(prov.get("checkpoint", "")),
                n_samples=len(samples))


# ----------------------------------------------------------------------------- statistics
def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a true join outscores a false merge (Mann-Whitney U / n_pos n_neg)."""
    from scipy.stats import mannwhitneyu

    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval over seeds."""
    from scipy.stats import t

    x = np.asarray(x, float)
    m = float(x.mean())
    if len(x) < 2:
        return m, float("nan"), float("nan")
    h = float(t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return m, m - h, m + h


def paired_reduction(arm: np.ndarray, base: np.ndarray, n_boot: int = 10000, seed: int = 0) -> tuple[float, float, float]:
    """Relative reduction 1 − mean(arm)/mean(base) with a paired bootstrap 95% CI over seeds."""
    arm, base = np.asarray(arm, float), np.asarray(base, float)
    point = 1 - arm.mean() / base.mean() if base.mean() > 0 else float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(arm), size=(n_boot, len(arm)))
    b = base[idx].mean(1)
    r = 1 - arm[idx].mean(1) / np.where(b > 0, b, np.nan)
    lo, hi = np.nanpercentile(r, [2.5, 97.5])
    return float(point), float(lo), float(hi)


# ----------------------------------------------------------------------------- one run
def _pool_job(job: tuple) -> object:
    """Build a chunk of merge candidates (runs in a worker)."""
    name, kwargs = job
    frags, ids, partners = _STATE["sources"][name]
    return build_candidates(frags, ids, partners=partners, **kwargs)


CACHE_VERSION = 2  # bump when candidate or run semantics change


def _key(*parts) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _file_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_pool(path: Path, pool) -> None:
    np.savez(path, **{f: getattr(pool, f) for f in pool.__dataclass_fields__})


def _load_pool(path: Path):
    from mogen.augment.examples import Candidates

    if not path.is_file():
        return None
    with np.load(path) as z:
        return Candidates(**{f: z[f] for f in Candidates.__dataclass_fields__})


def _build_pools(specs: dict, workers: int, n_points: int, view: float = 1.0, chunk: int = 250) -> dict:
    """specs: name -> (n, extra kwargs); chunks of ``chunk`` candidates run in parallel."""
    from mogen.augment.examples import Candidates

    jobs, owner = [], []
    for name, (n, kw) in specs.items():
        for c, start in enumerate(range(0, n, chunk)):
            seed = kw.get("seed", 0) * 100003 + c
            jobs.append((name, dict(kw, n=min(chunk, n - start), n_points=n_points, seed=seed, view=view)))
            owner.append(name)
    results = _parallel(_pool_job, jobs, workers, "merge candidates")
    pools = {}
    for name in specs:
        parts = [r for r, o in zip(results, owner) if o == name]
        pools[name] = Candidates(*[np.concatenate([getattr(p, f) for p in parts]) for f in Candidates.__dataclass_fields__])
    return pools


def _train_job(job: dict) -> dict:
    import torch

    from mogen.evaluate.classifier import score, train_classifier

    torch.set_num_threads(1)
    s = _STATE
    t0 = time.time()
    real = s["pools"][f"real@{job['n_train']}"]
    extra = s["pools"].get(job["arm"]) if job["arm"] != "real" else None
    model = train_classifier((real.points, real.labels), None if extra is None else (extra.points, extra.labels),
                             share=job["share"], steps=s["steps"], batch_size=s["batch_size"], lr=s["lr"], seed=job["seed"])
    train_s = time.time() - t0
    val = score(model, s["pools"]["val"].points)
    thr = float(np.quantile(val, 1 - s["acceptance"]))
    test = s["pools"]["test"]
    st = score(model, test.points)
    pos, neg = st[test.labels == 1], st[test.labels == 0]
    fm, tj = int((neg >= thr).sum()), int((pos < thr).sum())
    rep, vrep = s["replay"], s["val_replay"]
    replay_thr, replay_rule = replay_threshold(vrep, score(model, vrep.clouds), s["replay_rule"], s["acceptance"], thr)
    rs = score(model, rep.clouds)
    replay = rep.errors(rs, replay_thr)
    return dict(job, threshold=thr, replay_threshold=replay_thr, replay_rule=replay_rule, auroc=auroc(pos, neg), false_merges_accepted=fm, true_joins_rejected=tj,
                errors=fm + tj, error_rate=(fm + tj) / len(st), true_join_acceptance=float((pos >= thr).mean()),
                replay_auroc=auroc(rs[rep.same & rep.involved], rs[~rep.same & rep.involved]),
                **{f"replay_{k}": v for k, v in replay.items()}, train_seconds=train_s, seconds=time.time() - t0)


def replay_threshold(val_replay, scores: np.ndarray, rule: str, acceptance: float, fallback: float) -> tuple[float, str]:
    """The replay's accept threshold, set on the validation neurons' own over-segmentation.

    ``min-errors``: the threshold with the fewest validation split + merge errors (what one tunes
    an agglomeration on), when the validation neurons touch each other so that wrong merges are
    possible there; otherwise, and for ``acceptance``: accept that share of true contacts.
    """
    true = val_replay.same & val_replay.involved
    if rule == "min-errors" and (~val_replay.same & val_replay.involved).any():
        cands = np.unique(np.r_[np.quantile(scores, np.linspace(0, 1, 201)), 1.0 + 1e-6])
        errs = [val_replay.errors(scores, t)["errors_per_mm"] for t in cands]
        return float(cands[int(np.argmin(errs))]), "min-errors"
    if true.any():
        return float(np.quantile(scores[true], 1 - acceptance)), "acceptance"
    return fallback, "acceptance (candidate threshold: no validation contacts)"


def _parallel(fn, jobs: list, workers: int, desc: str) -> list:
    """Results of ``fn`` over ``jobs``, in order."""
    return list(_iparallel(fn, jobs, workers, desc, ordered=True))


def _iparallel(fn, jobs: list, workers: int, desc: str, ordered: bool = False):
    """Results of ``fn`` over ``jobs`` as they finish (in any order unless ``ordered``), on
    ``workers`` forked processes."""
    from tqdm import tqdm

    if workers <= 1:
        yield from (fn(j) for j in tqdm(jobs, desc=desc))
        return
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        yield from tqdm((pool.imap if ordered else pool.imap_unordered)(fn, jobs), total=len(jobs), desc=desc)


# ----------------------------------------------------------------------------- experiment
def run_experiment(args: argparse.Namespace) -> dict:
    from mogen.evaluate.replay import Replay, covered_cable_um, neuron_clouds
    from mogen.data import manifest_hash, read_manifest

    t_start = time.time()
    load_start = list(os.getloadavg())
    timings = {}
    root = Path(args.real)
    manifest = read_manifest(root)
    R = float(manifest["radius_um"])
    sample_set = read_samples(Path(args.synthetic))
    provenance = generator_provenance(sample_set, Path(args.synthetic), root)
    samples = sample_set.points_unit

    tr_pts, tr_meta = load_split(root, "train")
    te_pts, te_meta = load_split(root, "test")
    train_neurons = list(manifest["splits"]["train"]["neurons"])
    val_neurons = list(manifest["splits"].get("val", {}).get("neurons", []))
    test_neurons = list(manifest["splits"]["test"]["neurons"])
    rng = np.random.default_rng(args.data_seed)
    if val_neurons:
        va_pts, va_meta = load_split(root, "val")
        val_note = "dataset val split"
    else:
        if len(train_neurons) < 3:
            raise UsageError(f"{root}: no validation neurons and only {len(train_neurons)} train neurons; need 3 to hold one out")
        val_neurons = [str(rng.choice(sorted(train_neurons)))]
        train_neurons = [n for n in train_neurons if n not in val_neurons]
        va_pts, va_meta = tr_pts, tr_meta
        val_note = "held out from the dataset's train split (it has no val split); never used to train the classifier"
    if not test_neurons:
        raise UsageError(f"{root}: the test split has no neurons")
    # allowed (they are train neurons of the dataset) but worth knowing: the threshold is then set
    # on a neuron the generator imitated
    provenance["val_neurons_seen_by_generator"] = sorted(set(val_neurons) & set(provenance["generator_train_neurons"]))
    train_rows = np.flatnonzero(np.isin(tr_meta["neuron_id"], train_neurons))
    val_rows = np.flatnonzero(np.isin(va_meta["neuron_id"], val_neurons))
    order = list(rng.permutation(sorted(train_neurons)))
    curve = sorted({n for n in (args.curve or range(2, len(order) + 1)) if 2 <= n <= len(order)} | {len(order)})

    # merge-candidate sources: real subsets (learning curve), synthetic, controls, val, test
    n_extra = min(len(samples), args.max_synthetic)
    n_ctrl = args.control_fragments
    sources = {}
    for n in curve:
        rows = train_rows[np.isin(tr_meta["neuron_id"][train_rows], order[:n])]
        sources[f"real@{n}"] = (np.asarray(tr_pts[rows]), tr_meta["neuron_id"][rows], None)
    sources["synthetic"] = (samples[:n_extra], np.array([f"syn{i}" for i in range(n_extra)]), None)
    pick = np.sort(rng.choice(train_rows, size=n_ctrl))
    sources["jitter"] = (lambda: elastic_deform(np.asarray(tr_pts[pick]), seed=args.data_seed), tr_meta["neuron_id"][pick], None)
    per = 16
    sources["random-walk"] = (lambda: random_walk_fragments(n_ctrl, n_points=tr_pts.shape[1], radius_um=R, seed=args.data_seed, per_neuron=per),
                              np.array([f"rw{i // per}" for i in range(n_ctrl)]), None)
    sources["val"] = (np.asarray(va_pts[val_rows]), va_meta["neuron_id"][val_rows], None)
    if len(test_neurons) >= 2:
        partners, partner_note = (np.asarray(te_pts), te_meta["neuron_id"]), "other test neurons"
    else:
        partners, partner_note = (sources["val"][0], sources["val"][1]), "validation neurons (the test split has one neuron)"
    sources["test"] = (np.asarray(te_pts), te_meta["neuron_id"], partners)
    specs = {f"real@{n}": (args.train_candidates, dict(seed=1)) for n in curve}
    specs.update({a: (args.extra_candidates, dict(seed=2)) for a in ("synthetic", "jitter", "random-walk")})
    specs["val"] = (args.val_candidates, dict(seed=3, only="true"))
    specs["test"] = (args.test_candidates, dict(seed=4))
    arms = set(args.arms)
    if "synthetic" not in arms:
        specs.pop("synthetic")
    # cache keys: everything that decides a pool or a run; synthetic ones add the samples' bytes
    cache = Path(args.cache) if args.cache else Path(args.out) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    base_key = _key(manifest_hash(root), sorted(train_neurons), val_neurons, [str(x) for x in order], args.points, args.view,
                    args.data_seed, args.train_candidates, args.extra_candidates, args.val_candidates, args.test_candidates,
                    args.control_fragments, CACHE_VERSION)
    samples_key = _key(base_key, _file_sha(Path(args.synthetic)), args.max_synthetic)
    pool_keys = {name: (samples_key if name == "synthetic" else base_key) + "_" + name for name in specs}
    pools = {name: _load_pool(cache / f"pool_{k}.npz") for name, k in pool_keys.items()}
    todo = {name: spec for name, spec in specs.items() if pools[name] is None}
    for name in todo:  # materialise generated sources only when needed
        f, ids, partners = sources[name]
        sources[name] = (f() if callable(f) else f, ids, partners)
    _STATE["sources"] = sources
    built = _build_pools(todo, args.workers, args.points, args.view) if todo else {}
    for name, pool in built.items():
        _save_pool(cache / f"pool_{pool_keys[name]}.npz", pool)
        pools[name] = pool
    timings["candidates_s"] = time.time() - t_start

    # agglomeration replay on the test neurons (+ partners they can be falsely merged with)
    t0 = time.time()
    clouds = neuron_clouds(te_pts, te_meta["anchor_um"], te_meta["neuron_id"], R, test_neurons)
    val_clouds = neuron_clouds(va_pts, va_meta["anchor_um"], va_meta["neuron_id"], R, val_neurons)
    if len(test_neurons) < 2:
        clouds.update(val_clouds)
    # per-mm rates divide by the cable the rebuilt clouds cover (all of it unless the dataset
    # kept only some of a neuron's crops)
    entries = {n["id"]: n for n in manifest["neurons"]}
    cable = {}
    for nid in test_neurons:
        cable[nid] = covered_cable_um(entries[nid], te_meta["anchor_um"][te_meta["neuron_id"] == nid], R)
    for nid in val_neurons:
        cable[nid] = covered_cable_um(entries[nid], va_meta["anchor_um"][va_meta["neuron_id"] == nid], R)
    replay = Replay(clouds, test_neurons, cable, R * args.view, args.points, piece_um=args.piece_um,
                    contact_um=args.contact_um, seed=args.data_seed)
    # the replay's own threshold comes from the validation neurons over-segmented the same way
    # (their pieces, not test pieces, decide it)
    val_replay = Replay(val_clouds, val_neurons, cable, R * args.view, args.points, piece_um=args.piece_um,
                        contact_um=args.contact_um, seed=args.data_seed + 7)
    timings["replay_setup_s"] = time.time() - t0
    _STATE.update(pools=pools, replay=replay, val_replay=val_replay, steps=args.steps, batch_size=args.batch_size,
                  lr=args.lr, acceptance=args.acceptance, replay_rule=args.replay_threshold)

    # training runs: every arm × seed at the full train set, and real-only over the learning curve
    shares = sorted(set(args.shares) | {args.share})
    full = curve[-1]
    control_shares = sorted(set(args.control_shares if args.control_shares is not None else [args.share]))
    jobs = []
    if "real" in arms:
        jobs += [dict(arm="real", share=0.0, n_train=n, seed=s) for n in curve[::-1] for s in range(args.seeds)]
    if "synthetic" in arms:
        jobs += [dict(arm="synthetic", share=p, n_train=full, seed=s) for p in shares for s in range(args.seeds)]
    for arm in ("jitter", "random-walk"):
        if arm in arms:
            jobs += [dict(arm=arm, share=p, n_train=full, seed=s) for p in control_shares for s in range(args.seeds)]
    run_key = _key(base_key, args.steps, args.batch_size, args.lr, args.acceptance, args.piece_um, args.contact_um,
                   args.replay_threshold)
    for j in jobs:
        j["key"] = _key(run_key, samples_key if j["arm"] == "synthetic" else "", j["arm"], j["share"], j["n_train"], j["seed"])
    runs = [json.loads((cache / f"run_{j['key']}.json").read_text()) for j in jobs if (cache / f"run_{j['key']}.json").is_file()]
    todo_jobs = [j for j in jobs if not (cache / f"run_{j['key']}.json").is_file()]
    t0 = time.time()
    for r in _iparallel(_train_job, todo_jobs, args.workers, "classifier runs") if todo_jobs else []:
        (cache / f"run_{r['key']}.json").write_text(json.dumps(r, default=float))  # each as it ends: a stopped run resumes
        runs.append(r)
    timings["training_s"] = time.time() - t0
    timings["total_s"] = time.time() - t_start
    timings["runs_from_cache"] = len(jobs) - len(todo_jobs)
    timings["wall_s_of_all_runs_summed"] = float(sum(r["seconds"] for r in runs))  # incl. cached ones

    return summarise(runs, dict(
        dataset=str(root), synthetic=str(args.synthetic), provenance=provenance,
        splits=dict(train=train_neurons, val=val_neurons, test=test_neurons, val_note=val_note,
                    false_merge_partners_for_test=partner_note, learning_curve_order=[str(x) for x in order]),
        pools={k: dict(n=len(v), true=int(v.labels.sum())) for k, v in pools.items()},
        replay=replay.summary, val_replay=val_replay.summary, settings={k: v for k, v in vars(args).items() if k not in ("out",)},
        baselines=dict(no_merges=replay.errors(np.zeros(len(replay.edges)), 0.5),
                       merge_all=replay.errors(np.ones(len(replay.edges)), 0.5)),
        timings=timings, shares=shares, control_shares=control_shares, full_n_train=full, curve=curve,
        machine=dict(cpus=os.cpu_count(), workers=args.workers, load_start=load_start, load_end=list(os.getloadavg()))))


METRICS = ("errors", "error_rate", "false_merges_accepted", "true_joins_rejected", "auroc", "true_join_acceptance",
           "replay_errors_per_mm", "replay_split_per_mm", "replay_merge_per_mm", "replay_auroc")


def summarise(runs: list[dict], info: dict) -> dict:
    def arm_runs(arm, share, n):
        rs = [r for r in runs if r["arm"] == arm and r["share"] == share and r["n_train"] == n]
        return sorted(rs, key=lambda r: r["seed"])

    full = info["full_n_train"]
    base = arm_runs("real", 0.0, full)
    table = []
    for arm in ARMS:
        for share in {"real": [0.0], "synthetic": info["shares"]}.get(arm, info["control_shares"]):
            rs = arm_runs(arm, share, full)
            if not rs:
                continue
            row = dict(arm=arm, share=share, n_train=full, seeds=len(rs))
            for m in METRICS:
                row[m] = mean_ci([r[m] for r in rs])
            for m in ("errors", "replay_errors_per_mm"):
                paired = arm != "real" and len(base) == len(rs)
                row[f"reduction_{m}"] = paired_reduction([r[m] for r in rs], [r[m] for r in base]) if paired else None
            table.append(row)
    curve = []
    for n in info["curve"]:
        rs = arm_runs("real", 0.0, n)
        if not rs:
            continue
        curve.append(dict(n_train=n, seeds=len(rs), **{m: mean_ci([r[m] for r in rs]) for m in METRICS}))
    return dict(info, table=table, learning_curve=curve, runs=runs)


# ----------------------------------------------------------------------------- report
def _fmt(v, digits=3) -> str:
    m, lo, hi = v
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _pct(v) -> str:
    if v is None:
        return "—"
    return f"{100 * v[0]:+.1f}% [{100 * v[1]:+.1f}, {100 * v[2]:+.1f}]"


def write_report(rep: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(rep, indent=1, default=float))
    p = rep["provenance"]
    lines = [
        "# Augmentation experiment", "",
        f"dataset `{rep['dataset']}`; synthetic `{rep['synthetic']}` ({p['n_samples']} samples, checkpoint `{p['checkpoint']}`)",
        f"generator trained on {p['generator_train_neurons']} (same dataset manifest: {p['same_dataset']}; "
        f"classifier-val neurons it saw: {p.get('val_neurons_seen_by_generator')})",
        f"classifier train neurons {rep['splits']['train']}; val {rep['splits']['val']} ({rep['splits']['val_note']}); "
        f"test {rep['splits']['test']}; test false-merge partners: {rep['splits']['false_merge_partners_for_test']}",
        "candidates: " + ", ".join(f"{k} {v['n']} ({v['true']} true)" for k, v in rep["pools"].items()),
        f"replay: {rep['replay']}; threshold ({rep['settings'].get('replay_threshold', 'acceptance')}) from validation replay {rep.get('val_replay')}",
        f"replay baselines: no merges {rep['baselines']['no_merges']['errors_per_mm']:.2f}/mm, "
        f"merge everything {rep['baselines']['merge_all']['errors_per_mm']:.2f}/mm",
        f"settings: steps {rep['settings']['steps']}, batch {rep['settings']['batch_size']}, points {rep['settings']['points']}, "
        f"seeds {rep['settings']['seeds']}, acceptance {rep['settings']['acceptance']}",
        f"time: {rep['timings']['total_s'] / 60:.1f} min total ({', '.join(f'{k} {v:.0f}' for k, v in rep['timings'].items())}) "
        f"on {rep['machine']['workers']} worker processes, {rep['machine']['cpus']} CPUs, load average "
        f"{rep['machine']['load_start'][0]:.1f} at start / {rep['machine']['load_end'][0]:.1f} at end", "",
        "Mean [95% CI over seeds]; reduction = 1 − arm/real, paired bootstrap 95% CI over seeds (positive = fewer errors).", "",
        "| arm | share | test errors (FM acc + TJ rej) | AUROC | replay errors/mm | split/mm | merge/mm | replay AUROC | Δ errors | Δ replay errors/mm |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rep["table"]:
        lines.append(f"| {r['arm']} | {r['share']:.2f} | {_fmt(r['errors'], 1)} | {_fmt(r['auroc'])} | "
                     f"{_fmt(r['replay_errors_per_mm'], 2)} | {_fmt(r['replay_split_per_mm'], 2)} | {_fmt(r['replay_merge_per_mm'], 2)} | "
                     f"{_fmt(r['replay_auroc'])} | {_pct(r['reduction_errors'])} | {_pct(r['reduction_replay_errors_per_mm'])} |")
    lines += ["", "Learning curve (real only):", "", "| real train neurons | test errors | AUROC | replay errors/mm |", "|---|---|---|---|"]
    for r in rep["learning_curve"]:
        lines.append(f"| {r['n_train']} | {_fmt(r['errors'], 1)} | {_fmt(r['auroc'])} | {_fmt(r['replay_errors_per_mm'], 2)} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    _plot(rep, out / "augment.png")


def _plot(rep: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def ci(rows, m):
        return np.nan_to_num(np.array([[r[m][0] - r[m][1], r[m][2] - r[m][0]] for r in rows]).T)

    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    names = [f"{r['arm']}\n{r['share']:.1f}" if r["arm"] != "real" else "real" for r in rep["table"]]
    panels = ((axes[0], "errors", "test errors (FM acc + TJ rej)"), (axes[1], "replay_errors_per_mm", "replay errors / mm"),
              (axes[2], "replay_auroc", "replay AUROC (true vs false contacts)"))
    for ax, m, title in panels:
        mean = [r[m][0] for r in rep["table"]]
        ax.bar(range(len(mean)), mean, yerr=ci(rep["table"], m), capsize=3, color=["0.5"] + ["C0"] * (len(mean) - 1))
        ax.set_xticks(range(len(mean)), names, fontsize=7)
        ax.set_title(title)
    axes[2].set_ylim(0.5, 1.0)
    for key, style in (("no_merges", "--"), ("merge_all", ":")):
        axes[1].axhline(rep["baselines"][key]["errors_per_mm"], color="k", ls=style, lw=1, label=key.replace("_", " "))
    axes[1].legend(fontsize=7, loc="upper right")
    lc = rep["learning_curve"]
    x = [r["n_train"] for r in lc]
    axes[3].errorbar(x, [r["errors"][0] for r in lc], yerr=ci(lc, "errors"), marker="o", capsize=3, color="C0")
    axes[3].set_ylabel("test errors", color="C0")
    twin = axes[3].twinx()
    twin.errorbar(x, [r["auroc"][0] for r in lc], yerr=ci(lc, "auroc"), marker="s", capsize=3, color="C1")
    twin.set_ylabel("AUROC", color="C1")
    axes[3].set_xscale("log", base=2)
    axes[3].set_xticks(x, [str(v) for v in x])
    axes[3].set_xlabel("real training neurons")
    axes[3].set_title("learning curve (real only)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- CLI
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--real", required=True, help="dataset directory written by `mogen prepare` (manifest.json, train/val/test)")
    p.add_argument("--synthetic", required=True, help="samples.npz written by sample.py (with train_neurons)")
    p.add_argument("--out", required=True, help="output directory for report.json, report.md, augment.png")
    p.add_argument("--share", type=float, default=0.1, help="share of each batch replaced by synthetic/control candidates")
    p.add_argument("--shares", type=float, nargs="*", default=[0.1, 0.3],
                   help="shares swept for the synthetic arm (--share is always included)")
    p.add_argument("--control-shares", type=float, nargs="*", default=None,
                   help="shares for the jitter and random-walk controls (default: --share only)")
    p.add_argument("--seeds", type=int, default=5, help="training seeds per arm")
    p.add_argument("--steps", type=int, default=1000, help="training steps per run (same for every arm)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--points", type=int, default=256, help="points per merge candidate")
    p.add_argument("--view", type=float, default=1.0,
                   help="the classifier sees the ball of view x R around the contact (1 = the whole fragment ball)")
    p.add_argument("--train-candidates", type=int, default=2000, help="real training candidates per learning-curve size")
    p.add_argument("--extra-candidates", type=int, default=1500, help="candidates in each synthetic/control pool")
    p.add_argument("--max-synthetic", type=int, default=2000, help="most generated fragments used (controls use as many)")
    p.add_argument("--val-candidates", type=int, default=400, help="validation true joins (sets the threshold)")
    p.add_argument("--test-candidates", type=int, default=800, help="test candidates (half true joins)")
    p.add_argument("--acceptance", type=float, default=0.95, help="share of validation true joins accepted")
    p.add_argument("--curve", type=int, nargs="*", default=None, help="real train-neuron counts for the learning curve (default 2..all)")
    p.add_argument("--replay-threshold", choices=("min-errors", "acceptance"), default="min-errors",
                   help="replay accept threshold from the validation replay: fewest split+merge errors (needs "
                        "validation neurons that touch), or --acceptance of its true contacts")
    p.add_argument("--piece-um", type=float, default=15.0, help="replay over-segmentation grid (µm)")
    p.add_argument("--contact-um", type=float, default=1.0, help="replay contact distance (µm)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (one torch thread each)")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS, help="arms to train (e.g. warm the cache without synthetic)")
    p.add_argument("--control-fragments", type=int, default=1000, help="fragments behind each control pool")
    p.add_argument("--cache", default=None,
                   help="directory caching candidate pools and finished runs, keyed by every setting that decides them "
                        "(default OUT/cache); a rerun with new samples retrains only the synthetic arm")
    p.add_argument("--data-seed", type=int, default=0, help="seed for candidate pools, held-out val neuron, replay")


def run(args) -> int:
    for name in ("share", "acceptance"):
        if not 0 <= getattr(args, name) <= 1:
            raise UsageError(f"--{name} must be in [0, 1], got {getattr(args, name)}")
    if any(not 0 < p < 1 for p in args.shares + [args.share] + (args.control_shares or [])):
        raise UsageError(f"--share/--shares must be in (0, 1), got {args.share} / {args.shares}")
    if not 0 < args.view <= 1:
        raise UsageError(f"--view must be in (0, 1], got {args.view}")
    if args.seeds < 1 or args.steps < 1:
        raise UsageError("--seeds and --steps must be at least 1")
    out = Path(args.out)
    rep = run_experiment(args)
    write_report(rep, out)
    print((out / "report.md").read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    from mogen.cli import run_command

    return run_command("python -m mogen.evaluate.augment", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
