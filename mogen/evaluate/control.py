"""Controllability: request a neurite type, a branchiness or a caliber; measure what comes out.

    python -m mogen.evaluate.control --ckpt runs/tiny --reference data/navis --n 8 --out runs/control

For each condition group a user can steer, fragments are sampled with only that group given
(the others masked, so the network has to honour the one asked for) and the realised value is
measured on every fragment:

- ``leaves`` (branchiness): requested MST leaf counts at the 10/30/50/70/90th percentiles of the
  training fragments'; realised: the sample's MST leaf count
  (:func:`mogen.data.conditions.mst_leaf_count`). Reported: Pearson and Spearman correlation,
  median absolute and relative error, and the same for unconditional samples "requesting" the
  same values (the floor: what no control gives).
- ``type``: requested axon / dendrite; realised: the type a linear discriminant on the ten
  shape features (:mod:`mogen.metrics.features`), fitted on the reference dataset's train
  fragments, assigns. Reported: accuracy on the requests, the classifier's accuracy on real
  test fragments (the ceiling) and on unconditional samples scored against random requests
  (the floor, ~50%).
- ``caliber``: when the generator has a caliber group, requested calibers vs the realised
  morphometric caliber (:mod:`mogen.metrics.morphometrics`); otherwise reported as unavailable.

Writes ``report.json``, ``report.md`` and ``control.png`` (requested vs realised).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from mogen.errors import UsageError

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
    from mogen.data.conditions import group_index, neurite_type_index
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
                         clip_ball=True).numpy()


def _agreement(requested, realised) -> dict:
    requested, realised = np.asarray(requested, float), np.asarray(realised, float)
    rel = np.abs(realised - requested) / np.maximum(np.abs(requested), 1e-9)
    return {"pearson": float(pearsonr(requested, realised)[0]) if np.std(realised) > 0 else float("nan"),
            "spearman": float(spearmanr(requested, realised)[0]) if np.std(realised) > 0 else float("nan"),
            "median_abs_error": float(np.median(np.abs(realised - requested))), "median_rel_error": float(np.median(rel)),
            "n": len(requested)}


def control_leaves(model, state, n: int, steps: int, seed: int) -> dict:
    from mogen.data.conditions import COND_GROUPS, COND_DIM, group_index, leaves_value, mst_leaf_count

    points = int(state["data"]["points_per_fragment"])
    bank_leaves = np.expm1(state["cond_bank"][:, COND_GROUPS["leaves"]].numpy()[:, 0] * np.log1p(points))
    levels = np.round(np.quantile(bank_leaves, [0.1, 0.3, 0.5, 0.7, 0.9])).astype(int)
    req = np.repeat(levels, n)
    cond = torch.zeros(len(req), COND_DIM)
    cond[:, COND_GROUPS["leaves"]] = leaves_value(torch.from_numpy(req), points).unsqueeze(-1)
    mask = torch.zeros(len(req), model.config.cond_groups, dtype=torch.bool)
    mask[:, group_index("leaves")] = True
    clouds = _sample(model, state, len(req), cond, mask, steps, seed)
    realised = np.array([mst_leaf_count(c) for c in clouds])
    free = _sample(model, state, len(req), torch.zeros_like(cond), torch.zeros_like(mask), steps, seed + 1)
    realised_free = np.array([mst_leaf_count(c) for c in free])
    return {"levels": levels.tolist(), "requested": req.tolist(), "realised": realised.tolist(),
            "conditioned": _agreement(req, realised), "unconditional_floor": _agreement(req, realised_free),
            "realised_unconditional": realised_free.tolist()}


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


def control_caliber(model, state, n: int, steps: int, seed: int) -> dict:
    from mogen.data import conditions as C

    if "caliber" not in C.COND_GROUPS or getattr(C, "caliber_value", None) is None \
            or C.group_index("caliber") >= model.config.cond_groups:
        return {"available": False, "why": "this generator / mogen has no caliber condition group yet"}
    from mogen.metrics.morphometrics import MORPH_NAMES, morphometrics

    radius = float(state["data"]["radius_um"])
    req = np.repeat([0.1, 0.2, 0.4, 0.8], n)
    cond = torch.zeros(len(req), C.COND_DIM)
    cond[:, C.COND_GROUPS["caliber"]] = C.caliber_value(torch.from_numpy(req)).reshape(len(req), -1).float()
    mask = torch.zeros(len(req), model.config.cond_groups, dtype=torch.bool)
    mask[:, C.group_index("caliber")] = True
    clouds = _sample(model, state, len(req), cond, mask, steps, seed + 4)
    realised = morphometrics(clouds, radius_um=radius)[:, MORPH_NAMES.index("caliber_um")]
    return {"available": True, "requested": req.tolist(), "realised": realised.tolist(), **_agreement(req, realised)}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    lv = report["leaves"]
    rng = np.random.default_rng(0)
    jit = rng.uniform(-0.15, 0.15, len(lv["requested"])) * np.diff(lv["levels"]).min(initial=1)
    axes[0].scatter(np.array(lv["requested"]) + jit, lv["realised"], s=8, label="conditioned")
    axes[0].scatter(np.array(lv["requested"]) - jit, lv["realised_unconditional"], s=8, alpha=0.5, label="unconditional")
    top = max(max(lv["realised"]), max(lv["requested"]))
    axes[0].plot([0, top], [0, top], "k--", lw=0.8)
    axes[0].set_xlabel("requested MST leaves")
    axes[0].set_ylabel("realised MST leaves")
    axes[0].set_title(f"branchiness: Spearman {lv['conditioned']['spearman']:.2f}", fontsize=9)
    axes[0].legend(fontsize=7)
    ty = report["type"]
    acc = [ty["accuracy_per_type"][t] for t in TYPES]
    axes[1].bar(range(len(TYPES)), acc)
    axes[1].axhline(ty["classifier_test_accuracy_ceiling"], color="g", ls="--", label="classifier on real test")
    axes[1].axhline(ty["unconditional_floor_accuracy"], color="r", ls=":", label="unconditional")
    axes[1].set_xticks(range(len(TYPES)), TYPES)
    axes[1].set_ylim(0, 1)
    axes[1].set_ylabel("realised = requested")
    axes[1].set_title("neurite type", fontsize=9)
    axes[1].legend(fontsize=7)
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


def run(args) -> int:
    from mogen.data.dataset import read_manifest
    from mogen.sampling import load_generator

    if args.n < 2 or args.steps < 2:
        raise UsageError("--n and --steps must be at least 2")
    read_manifest(args.reference)
    out = Path(args.out)
    if (out / "report.json").exists() and not args.force:
        raise UsageError(f"{out / 'report.json'} exists; pass --force to replace it")
    if args.pretrained:
        from mogen.pretrained import checkpoint_path

        ckpt = checkpoint_path(args.pretrained)
    else:
        ckpt = args.ckpt
    model, state = load_generator(ckpt)
    t0 = time.perf_counter()
    report = {"checkpoint": str(Path(state["path"]).resolve()), "steps": args.steps, "n_per_value": args.n,
              "leaves": control_leaves(model, state, args.n, args.steps, args.seed),
              "type": control_type(model, state, Path(args.reference), args.n, args.steps, args.seed),
              "caliber": control_caliber(model, state, args.n, args.steps, args.seed)}
    report["seconds"] = round(time.perf_counter() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    lv, ty, ca = report["leaves"], report["type"], report["caliber"]
    lines = ["# Controllability", "", f"Checkpoint {report['checkpoint']}, {args.steps} calls, {args.n} samples per requested value.", "",
             "| feature | requested | agreement | unconditional (floor) | ceiling |", "|---|---|---|---|---|",
             f"| leaves (MST) | {lv['levels']} | Pearson {lv['conditioned']['pearson']:.2f}, Spearman "
             f"{lv['conditioned']['spearman']:.2f}, median rel. error {lv['conditioned']['median_rel_error']:.2f} | "
             f"Spearman {lv['unconditional_floor']['spearman']:.2f}, rel. error {lv['unconditional_floor']['median_rel_error']:.2f} | 1 |",
             f"| type | {', '.join(TYPES)} | accuracy {ty['accuracy']:.2f} ({', '.join(f'{k} {v:.2f}' for k, v in ty['accuracy_per_type'].items())}) | "
             f"{ty['unconditional_floor_accuracy']:.2f} | classifier on real test {ty['classifier_test_accuracy_ceiling']:.2f} |",
             f"| caliber | " + (f"{sorted(set(ca['requested']))} µm | Pearson {ca['pearson']:.2f}, rel. error {ca['median_rel_error']:.2f} | | |"
                                if ca.get("available") else f"- | {ca['why']} | | |")]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    plot(report, out / "control.png")
    print(f"controllability -> {out / 'report.md'} ({report['seconds']} s)")
    return 0


def main(argv=None) -> int:
    from mogen.cli import run_command

    return run_command("python -m mogen.evaluate.control", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
