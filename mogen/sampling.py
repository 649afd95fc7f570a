"""Sample fragments from a trained checkpoint: noise -> ODE solve -> samples.npz, PLY, PNG.

``python sample.py --ckpt runs/tiny --n 64 --steps 20 --out runs/samples`` (or
``mogen sample ...``) loads the EMA weights, integrates the learnt flow from Gaussian
noise and writes

- ``samples.npz``: points in µm around the crop anchor (or unit-ball coordinates with
  ``--units unit``) and their provenance (:mod:`mogen.samples`, the format's owner),
- ``sample_0000.ply`` ... one point cloud per sample,
- ``samples.png``: a grid of the first 16 samples.

``--steps`` counts *network calls* (NFE): ``--steps 20 --solver midpoint`` is 10
midpoint steps. Conditions: ``--cond none`` (unconditional, default), ``--cond type=axon,ends=2,caliber=0.4``
(any of neurite type, cable ends per crop, tube radius in µm), or ``--cond DATASET_DIR[:split]`` (the full condition vectors
of randomly drawn fragments of that split, default ``train``; pick groups with ``--cond-groups``).
``--pretrained NAME`` samples a generator bundled with the package (:mod:`mogen.pretrained`).

Examples
--------
>>> from mogen.model import build_model
>>> pts = sample_clouds(build_model("pointinfinity", "tiny"), n=2, points=128, steps=2)
>>> pts.shape
torch.Size([2, 128, 3])
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mogen.checkpoint import load_checkpoint
from mogen.errors import CheckpointError, UsageError
from mogen.outputs import check_own, remove_outputs
from mogen.samples import is_samples_file, write_samples
from mogen.data.conditions import (COND_DIM, COND_GROUP_NAMES, COND_GROUPS, NEURITE_TYPES, caliber_from_value,  # noqa: F401 (doctest)
                                   caliber_value,
                                   ends_value, group_index, moments, neurite_type_index, with_moments)
from mogen.flow import source_noise
from mogen.model import DEFAULT_MODEL, build_model
from mogen.solvers import GRIDS, SOLVERS, guided_velocity, integrate, steps_for_calls

DESCRIPTION = """Sample neuron fragments from a trained checkpoint or a bundled generator.

Writes OUT/samples.npz (points in µm around the crop anchor, with provenance), one PLY per
sample and OUT/samples.png (the first 16). --steps counts network calls.
"""


def load_generator(ckpt: str | Path, device: str | torch.device = "cpu", weights: str = "ema") -> tuple[torch.nn.Module, dict]:
    """The network of a checkpoint (EMA weights by default), in eval mode, and the checkpoint dict."""
    state = load_checkpoint(ckpt, map_location="cpu")
    try:
        model = build_model(state.get("model_type", DEFAULT_MODEL), state["model_config"])
        model.load_state_dict(state[weights])
        if model.config.cond_dim != COND_DIM:
            raise CheckpointError(state["path"], "model", f"trained with an older condition layout ({model.config.cond_dim} "
                                  f"values, this mogen uses {COND_DIM}: cable ends and caliber replaced the MST leaf "
                                  "count); retrain it on a dataset prepared with this version")
    except (TypeError, RuntimeError, KeyError, UsageError) as e:
        raise CheckpointError(state["path"], "model", f"does not match this version of mogen's model: {e}") from None
    return model.to(device).eval().requires_grad_(False), state


@torch.no_grad()
def sample_clouds(
    model: torch.nn.Module,
    n: int,
    points: int = 2048,
    steps: int = 20,
    solver: str = "midpoint",
    grid: str = "uniform",
    noise_std: float = 1.0,
    cond: torch.Tensor | None = None,
    cond_mask: torch.Tensor | None = None,
    guidance: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
    source: str = "gaussian",
    source_cond: torch.Tensor | None = None,
    clip_ball: bool = False,
    knn_every: int = 1,
    last_euler: bool | None = None,
) -> torch.Tensor:
    """Generate ``n`` clouds of ``points`` points in unit-ball coordinates: [n, points, 3].

    ``steps`` is the number of network calls per cloud (see :func:`steps_for_calls`;
    ignored by dopri5). Without ``cond`` the network sees no condition. With
    ``source="moments"`` (see :func:`mogen.flow.source_noise`) the noise of cloud i
    has the centroid and covariance stored in ``source_cond[i]`` (default: ``cond``);
    :func:`draw_conditions` draws them from a checkpoint's training conditions.
    ``clip_ball`` moves points that end outside the unit ball (the crop sphere) onto it.
    ``knn_every`` reuses neighbour indices for that many calls (see :func:`guided_velocity`).
    ``last_euler`` ends with an Euler step to t = 1 (default: for ball-endpoint models, whose
    samples then lie inside the crop ball by construction; see :func:`mogen.flow.ball_velocity`).
    """
    device = next(model.parameters()).device
    groups = model.config.cond_groups
    if cond is None:
        cond = torch.zeros(n, model.config.cond_dim)
        cond_mask = torch.zeros(n, groups, dtype=torch.bool)
    if cond_mask is None:
        cond_mask = torch.ones(n, groups, dtype=torch.bool)
    if len(cond) != n or len(cond_mask) != n:
        raise ValueError(f"need {n} conditions, got cond {tuple(cond.shape)} and mask {tuple(cond_mask.shape)}")
    n_steps = steps if solver == "dopri5" else steps_for_calls(solver, steps)
    if last_euler is None:
        last_euler = getattr(model.config, "endpoint", "free") == "ball" and solver != "dopri5"
    g = torch.Generator().manual_seed(seed)
    centroid = cov = None
    if source == "moments":
        src = source_cond if source_cond is not None else (cond if cond_mask.any() else None)
        if src is None or len(src) != n:
            raise ValueError("source='moments' needs n condition vectors (source_cond) whose centroid/cov shape the noise")
        centroid, cov = moments(src.float())
    noise = source_noise((n, points, 3), source, noise_std, centroid, cov, g)
    out = []
    for i in tqdm(range(0, n, batch_size), desc="sample", unit="batch", disable=not progress):
        sl = slice(i, i + batch_size)
        v = guided_velocity(model, cond[sl].to(device), cond_mask[sl].to(device), guidance, knn_every)
        x, _ = integrate(v, noise[sl].to(device), n_steps, solver, grid, last_euler=last_euler)
        if clip_ball:  # fragments are crops of radius 1: pull stray points back onto the sphere
            x = x / x.norm(dim=-1, keepdim=True).clamp(min=1.0)
        out.append(x.float().cpu())
    return torch.cat(out)


def draw_conditions(bank: torch.Tensor, n: int, seed: int = 0, rotate: bool = True) -> torch.Tensor:
    """``n`` condition vectors drawn from ``bank`` [F, 15] (a checkpoint's training
    conditions), each with a uniform random rotation of its centroid and covariance, as
    the training fragments were rotated."""
    from mogen.geometry import random_rotations

    g = torch.Generator().manual_seed(seed)
    cond = bank[torch.randint(len(bank), (n,), generator=g)].clone().float()
    if rotate:
        r = random_rotations(n, g)
        centroid, cov = moments(cond)
        cond = with_moments(cond, (r @ centroid.unsqueeze(-1)).squeeze(-1), r @ cov @ r.transpose(1, 2))
    return cond


def condition_request(model, radius_um: float, neurite_type: str | None = None, ends: int | None = None,
                      caliber_um: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One condition vector [15] and mask [4..] asking for a neurite type, cable ends and a caliber.

    Groups not asked for are masked. Raises :class:`UsageError` for an unknown type, a negative
    count, a non-positive caliber or a group the generator was not trained with.

    Examples
    --------
    >>> from mogen.model import build_model
    >>> cond, mask = condition_request(build_model("pointinfinity", "tiny"), 10.0, "axon", ends=2, caliber_um=0.5)
    >>> mask.tolist(), round(float(caliber_from_value(cond[COND_GROUPS["caliber"]])) * 10.0, 3)
    ([True, False, False, True, True], 0.5)
    """
    cond = torch.zeros(model.config.cond_dim)
    mask = torch.zeros(model.config.cond_groups, dtype=torch.bool)
    have = COND_GROUP_NAMES[:model.config.cond_groups]

    def give(name):
        if name not in have or model.config.cond_dim != COND_DIM:
            raise UsageError(f"{name}: this generator was trained without a {name} condition; it has {', '.join(have)}")
        mask[group_index(name)] = True

    if neurite_type is not None:
        try:
            cond[neurite_type_index(neurite_type)] = 1.0
        except ValueError:
            raise UsageError(f"type {neurite_type!r}: choose one of {', '.join(NEURITE_TYPES)}") from None
        give("type")
    if ends is not None:
        if ends < 0:
            raise UsageError(f"ends must be >= 0, got {ends}")
        give("ends")
        cond[COND_GROUPS["ends"]] = ends_value(float(ends))
    if caliber_um is not None:
        if not (np.isfinite(caliber_um) and caliber_um > 0):
            raise UsageError(f"caliber must be a positive number of µm, got {caliber_um}")
        give("caliber")
        cond[COND_GROUPS["caliber"]] = caliber_value(caliber_um / radius_um)
    return cond, mask


def conditions_from_arg(spec: str, n: int, groups: list[str] | None, seed: int, model,
                        radius_um: float) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, dict]:
    """Parse ``--cond``; returns ``(cond [n, 15], cond_mask [n, groups], neurite_type [n], provenance)``.

    ``none``: unconditional. ``type=NAME,ends=N,caliber=UM`` (any of them): those groups only
    (:func:`condition_request`). ``DATASET[:split]``: the full condition vectors of random
    fragments of that split (default ``train``), restricted to ``groups`` when given.
    """
    cond = torch.zeros(n, COND_DIM)
    mask = torch.zeros(n, len(COND_GROUP_NAMES), dtype=torch.bool)
    ntype = np.zeros(n, dtype=np.int8)
    if spec == "none":
        return cond, mask, ntype, {"cond": "none", "cond_split": None, "cond_groups": []}
    if "=" in spec:  # type=axon,ends=2,caliber=0.4
        fields = {}
        for item in spec.split(","):
            key, _, value = item.partition("=")
            if key not in ("type", "ends", "caliber") or not value:
                raise UsageError(f"--cond {spec!r}: expected KEY=VALUE items with KEY type, ends or caliber "
                                 "(e.g. type=axon,ends=2,caliber=0.4)")
            fields[key] = value
        try:
            ends = int(fields["ends"]) if "ends" in fields else None
            caliber = float(fields["caliber"]) if "caliber" in fields else None
        except ValueError:
            raise UsageError(f"--cond {spec!r}: ends must be an integer and caliber a number of µm") from None
        one, one_mask = condition_request(model, radius_um, fields.get("type"), ends, caliber)
        ntype[:] = neurite_type_index(fields["type"]) if "type" in fields else 0
        names = [g for g, m in zip(COND_GROUP_NAMES, one_mask.tolist()) if m]
        return one.expand(n, -1).clone(), one_mask.expand(n, -1).clone(), ntype, {"cond": spec, "cond_split": None,
                                                                                  "cond_groups": names}
    root, _, split = spec.partition(":")
    split = split or "train"
    if not Path(root).is_dir():
        raise UsageError(f"--cond {spec!r}: expected none, type=NAME ({', '.join(NEURITE_TYPES)}) or a dataset dir[:split]")
    from mogen.data import FragmentDataset

    ds = FragmentDataset(root, split)
    if len(ds) == 0:
        raise UsageError(f"--cond {spec!r}: split {split} of {root} has no fragments")
    pick = np.random.default_rng(seed).choice(len(ds), n, replace=len(ds) < n)
    batch = ds.batch(pick)
    cond, ntype = batch["cond"].float(), batch["neurite_type"].numpy().astype(np.int8)
    for name in groups or COND_GROUP_NAMES:
        try:
            mask[:, group_index(name)] = True
        except ValueError as exc:
            raise UsageError(f"--cond-groups: {exc}") from None
    return cond, mask, ntype, {"cond": spec, "cond_split": split, "cond_dataset": str(Path(root).resolve()),
                               "cond_groups": list(groups or COND_GROUP_NAMES)}


def write_ply(points: np.ndarray, path: Path) -> None:
    import trimesh

    trimesh.PointCloud(points).export(path)


# Files this command writes into --out (and the only ones --force replaces).
OUTPUTS = (r"samples\.npz", r"samples\.png", r"sample_\d{4,}\.ply")  # what --force removes: this command's own files


def add_arguments(p) -> None:
    from mogen.pretrained import available

    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ckpt", help="checkpoint file or run directory (holding ckpt.pt) written by train.py")
    names = ", ".join(available()) or "none bundled in this install"
    which.add_argument("--pretrained", metavar="NAME", help=f"a generator bundled with mogen ({names})")
    p.add_argument("--out", required=True, help="output directory (samples.npz, samples.png, sample_*.ply)")
    p.add_argument("--n", type=int, default=64, help="number of fragments")
    p.add_argument("--steps", type=int, default=20, help="network calls per fragment (NFE); dopri5: adaptive")
    p.add_argument("--solver", default="midpoint", choices=SOLVERS)
    p.add_argument("--grid", default="uniform", choices=GRIDS, help="time grid of fixed-step solvers")
    p.add_argument("--points", type=int, default=0, help="points per fragment (0: as in training)")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale w (1: none)")
    p.add_argument("--cond", default="none",
                   help="none | KEY=VALUE,... with type=NAME (unknown, soma, axon, dendrite), ends=N (cable ends per "
                        "crop: 1 a tip, 2 a passing neurite, 3+ branches), caliber=UM (tube radius) | DATASET_DIR[:split] "
                        "(conditions of random fragments of that split; default split train)")
    p.add_argument("--cond-groups", default="", help="with a dataset --cond: comma-separated groups to give "
                                                     f"({', '.join(COND_GROUP_NAMES)}; default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--units", default="um", choices=("um", "unit"), help="µm around the anchor, or unit-ball coordinates")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--weights", default="ema", choices=("ema", "model"), help="EMA or raw weights")
    p.add_argument("--device", default="auto")
    p.add_argument("--clip-ball", action="store_true",
                   help="move points that end outside the crop sphere onto it (recorded in samples.npz; headline "
                        "numbers are made without it)")
    p.add_argument("--knn-every", type=int, default=1,
                   help="reuse each cloud's nearest-neighbour indices for this many network calls "
                        "(2 with midpoint: the half step reuses the step start's; 1: exact). Saves ~25%% of "
                        "sampling time but at 20 calls costs quality (BENCHMARKS.md); harmless at 200")
    p.add_argument("--no-ply", action="store_true", help="skip the per-sample PLY files")
    p.add_argument("--force", action="store_true", help="replace this command's earlier outputs in --out")


def check_arguments(args) -> None:
    """Every argument error, before any work (one line each)."""
    from mogen.solvers import CALLS_PER_STEP

    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    if args.solver == "dopri5":
        if args.steps < 0:
            raise UsageError(f"--steps must be >= 0, got {args.steps} (dopri5 ignores it)")
    elif args.steps < CALLS_PER_STEP[args.solver]:
        raise UsageError(f"--steps must be at least {CALLS_PER_STEP[args.solver]} network calls for {args.solver} "
                         f"(one step), got {args.steps}")
    if args.points < 0:
        raise UsageError(f"--points must be >= 0 (0: as in training), got {args.points}")
    if not np.isfinite(args.guidance):
        raise UsageError(f"--guidance must be a finite number, got {args.guidance}")
    if args.batch_size < 1 or args.knn_every < 1:
        raise UsageError("--batch-size and --knn-every must be at least 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if (out / "samples.npz").exists() and not args.force:
        raise UsageError(f"{out / 'samples.npz'} exists; pass --force to replace this command's earlier outputs")
    check_own(out / "samples.npz", is_samples_file, "sample.py / mogen sample")


def outputs(args) -> dict:
    """What this run writes, locked for its duration by :func:`mogen.cli.run_command`."""
    return {"--out": Path(args.out)}


def run(args) -> int:
    from mogen.data import check_generator
    from mogen.preview import plot_clouds
    from mogen.runtime import pick_device
    from mogen.solvers import CALLS_PER_STEP

    check_arguments(args)
    groups = [g for g in args.cond_groups.split(",") if g] or None
    device = pick_device(args.device)
    if args.pretrained:
        from mogen.pretrained import checkpoint_path

        ckpt = checkpoint_path(args.pretrained)
    else:
        ckpt = args.ckpt
    model, state = load_generator(ckpt, device, args.weights)
    cfg, data = state["config"], state["data"]
    points = args.points or data["points_per_fragment"]
    if points <= model.config.k:
        raise UsageError(f"--points must exceed the model's {model.config.k} neighbours, got {points}")
    cond, mask, ntype, cond_prov = conditions_from_arg(args.cond, args.n, groups, args.seed, model, float(data["radius_um"]))
    if cond_prov.get("cond_split") in ("val", "test"):
        same = check_generator(data, cond_prov["cond_dataset"], held_out=(), allow_foreign=True)["same_dataset"]
        print(f"WARNING: conditions come from the {cond_prov['cond_split']!r} split"
              f"{' of the dataset this generator was trained on' if same else ''}: samples then carry that split's "
              "centroids, covariances and leaf counts, and scoring them against it is optimistic "
              "(samples.npz records cond_split)", file=sys.stderr)
    source = cfg.get("source", "gaussian")
    source_cond, source_split = None, None
    if source == "moments" and not mask[:, [group_index("centroid"), group_index("cov")]].all():
        # Noise shaped like training fragments (centroid, covariance) drawn from the checkpoint.
        bank = state["cond_bank"]
        if ntype.any() and mask[:, group_index("type")].all():  # keep the requested neurite type where possible
            same_type = bank[bank[:, int(ntype[0])] > 0.5]
            bank = same_type if len(same_type) else bank
        source_cond, source_split = draw_conditions(bank, args.n, args.seed), "train"
    elif source == "moments":
        source_split = cond_prov.get("cond_split")
    out = Path(args.out)
    t0 = time.perf_counter()
    pts = sample_clouds(
        model, args.n, points, args.steps, args.solver, args.grid, cfg["noise_std"], cond, mask,
        args.guidance, args.seed, args.batch_size, progress=True, source=source, source_cond=source_cond,
        clip_ball=args.clip_ball, knn_every=args.knn_every,
    ).numpy()
    seconds = time.perf_counter() - t0
    nfe = -1 if args.solver == "dopri5" else steps_for_calls(args.solver, args.steps) * CALLS_PER_STEP[args.solver]
    radius = float(data["radius_um"])
    out.mkdir(parents=True, exist_ok=True)
    provenance = dict(
        checkpoint=str(Path(state["path"]).resolve()), pretrained=args.pretrained, model_type=state.get("model_type"),
        step=state.get("step"), manifest_hash=data.get("manifest_hash"), dataset=data.get("dir"),
        train_neurons=data.get("train_neurons"), train_cells=data.get("train_cells"),
        source=source, source_split=source_split, **cond_prov, solver=args.solver, steps=args.steps, nfe=nfe,
        grid=args.grid, guidance=args.guidance, seed=args.seed, weights=args.weights, knn_every=args.knn_every,
        clip_ball=bool(args.clip_ball), seconds=round(seconds, 2),
    )
    provenance.pop("cond_dataset", None) if provenance.get("cond_split") is None else None
    write_samples(out / "samples.npz", pts * radius if args.units == "um" else pts, radius, provenance, units=args.units,
                  cond=cond.numpy(), cond_mask=mask.numpy(), neurite_type=ntype)
    if args.force:  # only once the new samples are in place: a failed write keeps the earlier outputs
        remove_outputs(out, OUTPUTS[1:])
    if not args.no_ply:
        for i, p in enumerate(tqdm(pts * (radius if args.units == "um" else 1.0), desc="ply", unit="file")):
            write_ply(p, out / f"sample_{i:04d}.ply")
    shown = pts[:16] * (radius if args.units == "um" else 1.0)
    plot_clouds(shown, out / "samples.png", title=f"{args.solver}, {nfe} calls ({args.units})")
    print(f"{args.n} samples ({seconds:.1f} s) -> {out / 'samples.npz'}; preview {out / 'samples.png'}")
    return 0
