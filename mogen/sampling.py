"""Sample fragments from a trained checkpoint: noise -> ODE solve -> samples.npz, PLY, PNG.

``python sample.py --ckpt runs/tiny --n 64 --steps 20 --out runs/samples`` (or
``mogen sample ...``) loads the EMA weights, integrates the learnt flow from Gaussian
noise and writes

- ``samples.npz``: ``points`` float32 [n, N, 3] in µm around the crop anchor (or unit-ball
  coordinates with ``--units unit``) and the settings that made them (DESIGN.md contract),
- ``sample_0000.ply`` ... one point cloud per sample,
- ``preview.png``: a grid of the first 16 samples.

``--steps`` counts *network calls* (NFE): ``--steps 20 --solver midpoint`` is 10
midpoint steps. Conditions: ``--cond none`` (unconditional, default), ``--cond type=axon``
(only the neurite type), or ``--cond DATASET_DIR[:split]`` (the full condition vectors
of randomly drawn fragments of that split; pick groups with ``--cond-groups``).

Examples
--------
>>> from mogen.model import VelocityNet
>>> pts = sample_clouds(VelocityNet.from_config("tiny"), n=2, points=128, steps=2)
>>> pts.shape
torch.Size([2, 128, 3])
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mogen.checkpoint import load_checkpoint
from mogen.data.conditions import COND_DIM, COND_GROUPS, NEURITE_TYPES, neurite_type_index
from mogen.flow import moments_from_cond, source_noise
from mogen.model import ModelConfig, VelocityNet
from mogen.solvers import GRIDS, SOLVERS, guided_velocity, integrate, steps_for_calls

DESCRIPTION = "sample neuron fragments from a trained checkpoint (samples.npz + PLY + PNG preview)"


def load_generator(ckpt: str | Path, device: str | torch.device = "cpu", weights: str = "ema") -> tuple[VelocityNet, dict]:
    """The network of a checkpoint (EMA weights by default), in eval mode, and the checkpoint dict."""
    state = load_checkpoint(ckpt, map_location="cpu")
    try:
        model = VelocityNet(ModelConfig(**state["model_config"]))
        model.load_state_dict(state[weights])
    except (TypeError, RuntimeError) as e:
        raise ValueError(f"{state['path']} does not match this version of mogen's model: {e}") from None
    return model.to(device).eval().requires_grad_(False), state


@torch.no_grad()
def sample_clouds(
    model: VelocityNet,
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
) -> torch.Tensor:
    """Generate ``n`` clouds of ``points`` points in unit-ball coordinates: [n, points, 3].

    ``steps`` is the number of network calls per cloud (see :func:`steps_for_calls`;
    ignored by dopri5). Without ``cond`` the network sees no condition. With
    ``source="moments"`` (see :func:`mogen.flow.source_noise`) the noise of cloud i
    has the centroid and covariance stored in ``source_cond[i]`` (default: ``cond``);
    :func:`draw_conditions` draws them from a checkpoint's training conditions.
    ``clip_ball`` moves points that end outside the unit ball (the crop sphere) onto it.
    ``knn_every`` reuses neighbour indices for that many calls (see :func:`guided_velocity`).
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
    g = torch.Generator().manual_seed(seed)
    centroid = cov = None
    if source == "moments":
        src = source_cond if source_cond is not None else (cond if cond_mask.any() else None)
        if src is None or len(src) != n:
            raise ValueError("source='moments' needs n condition vectors (source_cond) whose centroid/cov shape the noise")
        centroid, cov = moments_from_cond(src.float())
    noise = source_noise((n, points, 3), source, noise_std, centroid, cov, g)
    out = []
    for i in tqdm(range(0, n, batch_size), desc="sample", unit="batch", disable=not progress):
        sl = slice(i, i + batch_size)
        v = guided_velocity(model, cond[sl].to(device), cond_mask[sl].to(device), guidance, knn_every)
        x, _ = integrate(v, noise[sl].to(device), n_steps, solver, grid)
        if clip_ball:  # fragments are crops of radius 1: pull stray points back onto the sphere
            x = x / x.norm(dim=-1, keepdim=True).clamp(min=1.0)
        out.append(x.float().cpu())
    return torch.cat(out)


def draw_conditions(bank: torch.Tensor, n: int, seed: int = 0, rotate: bool = True) -> torch.Tensor:
    """``n`` condition vectors drawn from ``bank`` [F, 14] (a checkpoint's training
    conditions), each with a uniform random rotation of its centroid and covariance, as
    the training fragments were rotated."""
    from mogen.data import random_rotations

    g = torch.Generator().manual_seed(seed)
    cond = bank[torch.randint(len(bank), (n,), generator=g)].clone().float()
    if rotate:
        r = random_rotations(n, g)
        centroid, cov = moments_from_cond(cond)
        cov = r @ cov @ r.transpose(1, 2)
        cond[:, COND_GROUPS["centroid"]] = (r @ centroid.unsqueeze(-1)).squeeze(-1)
        cond[:, COND_GROUPS["cov"]] = torch.stack(
            [cov[:, 0, 0], cov[:, 1, 1], cov[:, 2, 2], cov[:, 0, 1], cov[:, 0, 2], cov[:, 1, 2]], -1
        )
    return cond


def conditions_from_arg(spec: str, n: int, groups: list[str] | None, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Parse ``--cond``; returns ``(cond [n, 14], cond_mask [n, 4], neurite_type [n])``."""
    names = list(COND_GROUPS)
    cond = torch.zeros(n, COND_DIM)
    mask = torch.zeros(n, len(names), dtype=torch.bool)
    ntype = np.zeros(n, dtype=np.int8)
    if spec == "none":
        return cond, mask, ntype
    if spec.startswith("type="):
        t = neurite_type_index(spec[5:])
        cond[:, t] = 1.0
        mask[:, names.index("type")] = True
        ntype[:] = t
        return cond, mask, ntype
    root, _, split = spec.partition(":")
    if not (Path(root) / "manifest.json").is_file():
        raise ValueError(f"--cond {spec!r}: expected none, type=NAME ({', '.join(NEURITE_TYPES)}) or a dataset dir[:split]")
    from mogen.data import FragmentDataset

    ds = FragmentDataset(root, split or "test")
    if len(ds) == 0:
        raise ValueError(f"--cond {spec!r}: split {split or 'test'} of {root} has no fragments")
    pick = np.random.default_rng(seed).choice(len(ds), n, replace=len(ds) < n)
    for j, i in enumerate(pick):
        item = ds[int(i)]
        cond[j], ntype[j] = item["cond"], int(item["neurite_type"])
    for name in groups or names:
        if name not in names:
            raise ValueError(f"--cond-groups: unknown group {name!r}; choose from {names}")
        mask[:, names.index(name)] = True
    return cond, mask, ntype


def write_ply(points: np.ndarray, path: Path) -> None:
    import trimesh

    trimesh.PointCloud(points).export(path)


def add_arguments(p) -> None:
    p.add_argument("--ckpt", required=True, help="checkpoint file or run directory (holding ckpt.pt)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--n", type=int, default=64, help="number of fragments")
    p.add_argument("--steps", type=int, default=20, help="network calls per fragment (NFE); dopri5: adaptive")
    p.add_argument("--solver", default="midpoint", choices=SOLVERS)
    p.add_argument("--grid", default="uniform", choices=GRIDS, help="time grid of fixed-step solvers")
    p.add_argument("--points", type=int, default=0, help="points per fragment (0: as in training)")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale w (1: none)")
    p.add_argument("--cond", default="none", help="none | type=NAME | DATASET_DIR[:split]")
    p.add_argument("--cond-groups", default="", help="with a dataset --cond: comma-separated groups to give (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--units", default="um", choices=("um", "unit"), help="µm around the anchor, or unit-ball coordinates")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--weights", default="ema", choices=("ema", "model"), help="EMA or raw weights")
    p.add_argument("--device", default="auto")
    p.add_argument("--clip-ball", action="store_true", help="move points outside the crop sphere onto it")
    p.add_argument("--knn-every", type=int, default=1,
                   help="reuse each cloud's nearest-neighbour indices for this many network calls "
                        "(2 with midpoint: the half step reuses the step start's; 1: exact). Saves ~25%% of "
                        "sampling time but at 20 calls costs quality (feature-MMD 54 -> 72, BENCHMARKS.md); "
                        "harmless at 200")
    p.add_argument("--no-ply", action="store_true", help="skip the per-sample PLY files")
    p.add_argument("--force", action="store_true", help="overwrite existing samples in --out")


def run(args) -> int:
    from mogen.preview import plot_clouds
    from mogen.training import pick_device

    out = Path(args.out)
    if (out / "samples.npz").exists() and not args.force:
        raise SystemExit(f"{out / 'samples.npz'} exists; pass --force to overwrite")
    try:
        model, state = load_generator(args.ckpt, pick_device(args.device), args.weights)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    cfg, data = state["config"], state["data"]
    points = args.points or data["points_per_fragment"]
    groups = [g for g in args.cond_groups.split(",") if g] or None
    cond, mask, ntype = conditions_from_arg(args.cond, args.n, groups, args.seed)
    source = cfg.get("source", "gaussian")
    source_cond = None
    if source == "moments" and not mask[:, [1, 2]].all():
        # Noise shaped like training fragments (centroid, covariance) drawn from the checkpoint.
        bank = state["cond_bank"]
        if ntype.any() and mask[:, 0].all():  # keep the requested neurite type where possible
            same = bank[bank[:, int(ntype[0])] > 0.5]
            bank = same if len(same) else bank
        source_cond = draw_conditions(bank, args.n, args.seed)
    t0 = time.perf_counter()
    pts = sample_clouds(
        model, args.n, points, args.steps, args.solver, args.grid, cfg["noise_std"], cond, mask,
        args.guidance, args.seed, args.batch_size, progress=True, source=source, source_cond=source_cond,
        clip_ball=args.clip_ball, knn_every=args.knn_every,
    ).numpy()
    seconds = time.perf_counter() - t0
    if args.solver == "dopri5":
        nfe = -1  # adaptive: not fixed in advance
    else:
        from mogen.solvers import CALLS_PER_STEP

        nfe = steps_for_calls(args.solver, args.steps) * CALLS_PER_STEP[args.solver]
    radius = float(data["radius_um"])
    if args.units == "um":
        pts = pts * radius
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / "samples.npz",
        points=pts.astype(np.float32), units=args.units, radius_um=radius, cond=cond.numpy().astype(np.float32),
        cond_mask=mask.numpy(), neurite_type=ntype, checkpoint=str(Path(state["path"]).resolve()),
        solver=args.solver, steps=args.steps, nfe=nfe, guidance=args.guidance, seed=args.seed,
        manifest_hash=data["manifest_hash"], train_neurons=json.dumps(data["train_neurons"]),
        grid=args.grid, weights=args.weights, clip_ball=args.clip_ball, knn_every=args.knn_every,
    )
    if not args.no_ply:
        for i, p in enumerate(tqdm(pts, desc="ply", unit="file")):
            write_ply(p, out / f"sample_{i:04d}.ply")
    plot_clouds(pts[:16], out / "preview.png", title=f"{args.solver}, {nfe} calls ({args.units})")
    print(f"{args.n} samples ({seconds:.1f} s) -> {out / 'samples.npz'}; preview {out / 'preview.png'}")
    return 0
