"""Controllability: request a neurite type, a branchiness or a caliber; measure what comes out.

    python -m mogen.evaluate.control --ckpt runs/tiny --reference data/navis --n 8 --out runs/control

For each condition group a user can steer, fragments are sampled with only that group given
(the others masked, so the network has to honour the one asked for) and the realised value is
measured on every fragment:

- ``ends`` (branchiness: cable ends in the crop, :func:`mogen.data.fragments.crop_topology`):
  requested at the 10/30/50/70/90th percentiles of the training fragments'; realised: the
  leaves of the sample's skeleton (:mod:`mogen.skeleton`). Reported: Pearson and Spearman
  correlation, median absolute and relative error, the same for unconditional samples
  "requesting" the same values (the floor: what no control gives), and for real test fragments
  their stored ends vs their skeleton's leaves (the ceiling of this measurement).
- ``type``: requested axon / dendrite; realised: the type a linear discriminant on the ten
  shape features (:mod:`mogen.metrics.features`), fitted on the reference dataset's train
  fragments, assigns. Reported: accuracy on the requests, the classifier's accuracy on real
  test fragments (the ceiling) and on unconditional samples scored against random requests
  (the floor, ~50%).
- ``caliber``: requested tube radii (µm, percentiles of the training fragments') vs the realised
  morphometric caliber (:mod:`mogen.metrics.morphometrics`), with the same floor and ceiling.

Writes ``report.json``, ``report.md`` and ``control.png`` (requested vs realised).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from mogen.errors import UsageError
from mogen.outputs import check_own, json_with, write_json, write_text

DESCRIPTION = __doc__
TYPES = ("axon", "dendrite")


def fit_lda(x: np.ndarray, y: np.ndarray, shrink: float = 0.1):
    """A linear discriminant (shared, shrunk covariance) on standardised features; returns predict(x)."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    classes = np.unique(y)
    means = np.stack([z[y == c].mean(0) for c in classes])
    resid = z - means[np.searchsorted(classes, y)]
    cov = (1 - shrink) * np.cov(resid.T) + shrink * np.eye(z.shape[1])
    inv = np.linalg.inv(cov)
    prior = np.log(np.array([(y == c).mean() for c in classes]))

    def predict(xn):
        zn = (xn - mu) / sd
        score = zn @ inv @ means.T - 0.5 * np.einsum("ci,ij,cj->c", means, inv, means) + prior
        return classes[np.argmax(score, 1)]

    return predict


def _sample(model, state, n, cond, mask, steps, seed):
    from mogen.data.conditions import group_index
    from mogen.sampling import draw_conditions, sample_clouds

    cfg = state["config"]
    source = cfg.get("source", "gaussian")
    source_cond = None
    if source == "moments":  # noise moments from training crops (of the requested type where one is asked for)
        bank = state["cond_bank"]
        if mask[:, group_index("type")].any():
            t = int(cond[0, :4].argmax())
            same = bank[bank[:, t] > 0.5]
            bank = same if len(same) else bank
        source_cond = draw_conditions(bank, n, seed)
    return sample_clouds(model, n, int(state["data"]["points_per_fragment"]), steps, cond=cond, cond_mask=mask,
                         noise_std=cfg.get("noise_std", 1.0), seed=seed, source=source, source_cond=source_cond,
                         ).numpy()


def _agreement(requested, realised) -> dict:
    requested, realised = np.asarray(requested, float), np.asarray(realised, float)
    rel = np.abs(realised - requested) / np.maximum(np.abs(requested), 1e-9)
    return {"pearson": float(pearsonr(requested, realised)[0]) if np.std(realised) > 0 else float("nan"),
            "spearman": float(spearmanr(requested, realised)[0]) if np.std(realised) > 0 else float("nan"),
            "median_abs_error": float(np.median(np.abs(realised - requested))), "median_rel_error": float(np.median(rel)),
            "n": len(requested)}


def _levels(values: np.ndarray, integer: bool) -> np.ndarray:
    levels = np.quantile(values, [0.1, 0.3, 0.5, 0.7, 0.9])
    return np.unique(np.round(levels).astype(int)) if integer else np.unique(np.round(levels, 3))


def _real_scalars(reference: Path, radius: float, cap: int, seed: int) -> dict:
    """Stored (skeleton) ends and caliber of real test fragments, and the same read off their clouds:
    how well the cloud measurement can track the truth at best (the ceiling)."""
    from mogen.data import read_split
    from mogen.metrics.morphometrics import MORPH_NAMES, morphometrics

    sp = read_split(reference, "test")
    pick = np.sort(np.random.default_rng(seed).choice(len(sp), min(cap, len(sp)), replace=False))
    morph = morphometrics(np.asarray(sp.points[pick]), radius_um=radius)
    return {"ends": (sp.cable_ends[pick].astype(float), morph[:, MORPH_NAMES.index("leaves")]),
            "caliber": (sp.caliber[pick].astype(float) * radius, morph[:, MORPH_NAMES.index("caliber_um")])}


def control_scalar(name: str, model, state, reference: Path, n: int, steps: int, seed: int) -> dict:
    """Request cable ends (branchiness) or caliber alone; realised: the sample's skeleton ends
    (leaves of :mod:`mogen.skeleton`) or its morphometric caliber (µm)."""
    from mogen.data import conditions as C
    from mogen.metrics.morphometrics import MORPH_NAMES, morphometrics

    if name not in C.COND_GROUPS or C.group_index(name) >= model.config.cond_groups:
        return {"available": False, "why": f"this generator has no {name} condition group"}
    radius = float(state["data"]["radius_um"])
    bank = state["cond_bank"][:, C.COND_GROUPS[name]].float()
    if name == "ends":
        bank_values, encode, column = C.ends_from_value(bank).numpy()[:, 0], C.ends_value, "leaves"
    else:  # caliber: requested and reported in µm
        bank_values = C.caliber_from_value(bank).numpy()[:, 0] * radius
        encode, column = (lambda v: C.caliber_value(torch.as_tensor(v) / radius)), "caliber_um"
    levels = _levels(bank_values, integer=name == "ends")
    req = np.repeat(levels, n)
    cond = torch.zeros(len(req), C.COND_DIM)
    cond[:, C.COND_GROUPS[name]] = encode(torch.from_numpy(req.astype(np.float64))).float().reshape(len(req), 1)
    mask = torch.zeros(len(req), model.config.cond_groups, dtype=torch.bool)
    mask[:, C.group_index(name)] = True
    col = MORPH_NAMES.index(column)
    realised = morphometrics(_sample(model, state, len(req), cond, mask, steps, seed), radius_um=radius)[:, col]
    free = morphometrics(_sample(model, state, len(req), torch.zeros_like(cond), torch.zeros_like(mask), steps, seed + 1),
                         radius_um=radius)[:, col]
    truth, measured = _real_scalars(reference, radius, 4 * len(levels) * n, seed)[name]
    return {"available": True, "levels": levels.tolist(), "requested": req.tolist(), "realised": realised.tolist(),
            "realised_unconditional": free.tolist(), "conditioned": _agreement(req, realised),
            "unconditional_floor": _agreement(req, free), "real_ceiling": _agreement(truth, measured)}


def control_type(model, state, reference: Path, n: int, steps: int, seed: int) -> dict:
    from mogen.data import FragmentDataset
    from mogen.data.conditions import COND_DIM, group_index, neurite_type_index
    from mogen.metrics.features import cloud_features

    rng = np.random.default_rng(seed)

    def real(split, cap=600):
        ds = FragmentDataset(reference, split)
        codes = [neurite_type_index(t) for t in TYPES]
        keep = np.flatnonzero(np.isin(ds.batch(range(len(ds)))["neurite_type"].numpy(), codes))
        keep = rng.choice(keep, min(cap, len(keep)), replace=False)
        b = ds.batch(keep)
        return cloud_features(b["points"].numpy()), b["neurite_type"].numpy()

    xtr, ytr = real("train")
    predict = fit_lda(xtr, ytr)
    xte, yte = real("test")
    req = np.repeat([neurite_type_index(t) for t in TYPES], n)
    cond = torch.zeros(len(req), COND_DIM)
    cond[torch.arange(len(req)), torch.from_numpy(req)] = 1.0
    mask = torch.zeros(len(req), model.config.cond_groups, dtype=torch.bool)
    mask[:, group_index("type")] = True
    clouds = _sample(model, state, len(req), cond, mask, steps, seed + 2)
    pred = predict(cloud_features(clouds))
    free = _sample(model, state, len(req), torch.zeros_like(cond), torch.zeros_like(mask), steps, seed + 3)
    pred_free = predict(cloud_features(free))
    per_type = {t: float((pred[req == neurite_type_index(t)] == neurite_type_index(t)).mean()) for t in TYPES}
    return {"requested": req.tolist(), "realised": pred.tolist(), "accuracy": float((pred == req).mean()),
            "accuracy_per_type": per_type, "classifier_test_accuracy_ceiling": float((predict(xte) == yte).mean()),
            "classifier_test_n": len(yte), "unconditional_floor_accuracy": float((pred_free == req).mean()),
            "realised_unconditional": pred_free.tolist()}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    rng = np.random.default_rng(0)
    for ax, name, unit in ((axes[0], "ends", "cable ends"), (axes[1], "caliber", "caliber (µm)")):
        r = report[name]
        if not r.get("available"):
            ax.set_title(f"{name}: {r.get('why', 'unavailable')}", fontsize=8)
            continue
        req = np.array(r["requested"], float)
        jit = rng.uniform(-0.15, 0.15, len(req)) * (np.diff(r["levels"]).min(initial=1) if len(r["levels"]) > 1 else 1)
        ax.scatter(req + jit, r["realised"], s=8, label="conditioned")
        ax.scatter(req - jit, r["realised_unconditional"], s=8, alpha=0.5, label="unconditional")
        top = max(max(r["realised"]), max(r["requested"]))
        ax.plot([0, top], [0, top], "k--", lw=0.8)
        ax.set_xlabel(f"requested {unit}")
        ax.set_ylabel(f"realised {unit} (from the cloud)")
        ax.set_title(f"{name}: Spearman {r['conditioned']['spearman']:.2f} (real ceiling "
                     f"{r['real_ceiling']['spearman']:.2f})", fontsize=9)
        ax.legend(fontsize=7)
    ty = report["type"]
    acc = [ty["accuracy_per_type"][t] for t in TYPES]
    axes[2].bar(range(len(TYPES)), acc)
    axes[2].axhline(ty["classifier_test_accuracy_ceiling"], color="g", ls="--", label="classifier on real test")
    axes[2].axhline(ty["unconditional_floor_accuracy"], color="r", ls=":", label="unconditional")
    axes[2].set_xticks(range(len(TYPES)), TYPES)
    axes[2].set_ylim(0, 1)
    axes[2].set_ylabel("realised = requested")
    axes[2].set_title("neurite type", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(p) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ckpt")
    which.add_argument("--pretrained", metavar="NAME")
    p.add_argument("--reference", required=True, help="the dataset the type classifier is fitted on (train) and "
                                                       "checked on (test)")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=8, help="samples per requested value")
    p.add_argument("--steps", type=int, default=20, help="network calls per sample")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")


def outputs(args) -> dict:
    """What this run writes, locked for its duration by :func:`mogen.cli.run_command`."""
    return {"--out": Path(args.out)}


def run(args) -> int:
    from mogen.data.dataset import read_manifest
    from mogen.sampling import load_generator

    if args.n < 2 or args.steps < 2:
        raise UsageError("--n and --steps must be at least 2")
    read_manifest(args.reference)
    out = Path(args.out)
    if (out / "report.json").exists() and not args.force:
        raise UsageError(f"{out / 'report.json'} exists; pass --force to replace it")
    check_own(out / "report.json", lambda p: json_with(p, ("checkpoint", "ends", "type", "caliber")), "mogen.evaluate.control")
    if args.pretrained:
        from mogen.pretrained import checkpoint_path

        ckpt = checkpoint_path(args.pretrained)
    else:
        ckpt = args.ckpt
    model, state = load_generator(ckpt)
    t0 = time.perf_counter()
    report = {"checkpoint": str(Path(state["path"]).resolve()), "steps": args.steps, "n_per_value": args.n,
              "ends": control_scalar("ends", model, state, Path(args.reference), args.n, args.steps, args.seed),
              "type": control_type(model, state, Path(args.reference), args.n, args.steps, args.seed),
              "caliber": control_scalar("caliber", model, state, Path(args.reference), args.n, args.steps, args.seed + 4)}
    report["seconds"] = round(time.perf_counter() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    ty = report["type"]

    def row(name, label):
        r = report[name]
        if not r.get("available"):
            return f"| {label} | - | {r['why']} | | |"
        c, f, top = r["conditioned"], r["unconditional_floor"], r["real_ceiling"]
        return (f"| {label} | {r['levels']} | Pearson {c['pearson']:.2f}, Spearman {c['spearman']:.2f}, median rel. error "
                f"{c['median_rel_error']:.2f} | Spearman {f['spearman']:.2f} | real test fragments: Spearman {top['spearman']:.2f} |")

    lines = ["# Controllability", "", f"Checkpoint {report['checkpoint']}, {args.steps} calls, {args.n} samples per requested value. "
             "Realised values are read off the clouds (skeleton ends, morphometric caliber); the ceiling is how well "
             "that reading tracks the stored skeleton value on real test fragments.", "",
             "| feature | requested | agreement | unconditional (floor) | ceiling |", "|---|---|---|---|---|",
             row("ends", "cable ends (branchiness)"),
             f"| type | {', '.join(TYPES)} | accuracy {ty['accuracy']:.2f} ({', '.join(f'{k} {v:.2f}' for k, v in ty['accuracy_per_type'].items())}) | "
             f"{ty['unconditional_floor_accuracy']:.2f} | classifier on real test {ty['classifier_test_accuracy_ceiling']:.2f} |",
             row("caliber", "caliber (µm)")]
    write_text(out / "report.md", "\n".join(lines) + "\n")
    plot(report, out / "control.png")
    print(f"controllability -> {out / 'report.md'} ({report['seconds']} s)")
    return 0


def main(argv=None) -> int:
    from mogen.cli import run_command

    return run_command("python -m mogen.evaluate.control", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
