"""Grow whole neurites by outpainting: crop after crop, each conditioned on what is already there.

    mogen grow --ckpt runs/tiny --length-um 300 --out runs/grown        # or --pretrained NAME
    mogen grow --ckpt runs/tiny --seed-from navis:0 --type dendrite --ends 2 --out runs/grown2

The generator only ever makes one crop: the surface inside a ball of radius R (10 µm) around a
point on the cable, as N points. A neurite is grown from a seed crop (sampled, or cut from a real
neuron with ``--seed-from``) by repeating:

1. **Where next.** Points of the newest crop in its outer shell (``--shell`` x R) that lie
   outside every earlier crop are clustered (links of ``exit_link_um``); every cluster of at
   least ``min_exit_frac`` x N points is a place where the neurite leaves the crop, and its
   mean (on the neurite's axis, ~0.9 R from the centre) is the centre of a next crop. Each exit
   is followed as a branch, breadth first; a crop without exits is a generated ending.
2. **Outpaint.** The points already grown inside the next ball are its known part (at most
   ``max_known_frac`` x N). The ODE is solved for all N points, but the known points are kept
   on their own straight path ``x_t = (1 - t) x0 + t x1`` ("replacement", as RePaint does for
   images; flow matching trains exactly this path), with noise ``x0`` drawn from the
   generator's source and matched to them by a minimal-cost assignment (training pairs noise and
   points the same way, :func:`mogen.flow.pair_noise`). The network sees them at every step, so
   the free points form the rest of a crop that agrees with them. ``resample`` extra passes
   re-noise the whole crop to ``resample_t`` and solve again (RePaint's resampling).
3. **Keep.** Free points that land inside an earlier crop are dropped (that region was already
   decided; their share is the *spill*, reported per crop), and so are points beyond 1.05 R
   (those just outside the ball are moved onto it); the rest are kept.

Growth stops when the path length along the crop centres reaches ``--length-um``, when no exit
is left (every branch ended), or after ``--max-crops``. Requested conditions (``--type``,
``--ends``, ``--caliber``) are given to every crop.

The grown cloud (µm, seed centre at the origin) is exported with :func:`mogen.export.export_neurite`:
``OUT/neurite.swc`` (one tree, rooted at the seed), ``OUT/neurite.ply`` (watertight mesh),
``OUT/neurite.png``, plus ``OUT/neurite.npz`` (points, crop of each point, crop centres) and
``OUT/grow.json`` (settings, per-crop record, seam quality: :func:`seam_quality`).

Examples
--------
>>> from mogen.model import build_model
>>> model = build_model("pointinfinity", "tiny")
>>> known = torch.rand(100, 3) * 0.5
>>> x = outpaint(model, known, n_points=256, steps=2, seed=0)
>>> x.shape, bool(torch.allclose(x[:100], known, atol=1e-5))   # known points end where they were
(torch.Size([256, 3]), True)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from mogen.errors import UsageError
from mogen.outputs import atomic_path, check_own, json_with, remove_outputs, write_json
from mogen.sampling import condition_request
from mogen.flow import pair_noise, source_noise
from mogen.solvers import SOLVERS, guided_velocity, integrate, steps_for_calls

OUTSIDE_TOLERANCE = 0.05  # free points beyond 1.05 R are dropped, those between R and 1.05 R moved onto the sphere

DESCRIPTION = """Grow a whole neurite by outpainting crop after crop from a seed, then export it.

Writes OUT/neurite.swc (one tree with radii), OUT/neurite.ply (watertight mesh), OUT/neurite.png,
OUT/neurite.npz (points in µm, crop of each point, crop centres) and OUT/grow.json (settings,
per-crop record, seam quality, skeleton/mesh/NEURON checks).
"""


# ----------------------------------------------------------------------------- one crop


def replacement_velocity(velocity, x0_known: torch.Tensor, x1_known: torch.Tensor):
    """``velocity`` with the first K points held on their path ``(1 - t) x0 + t x1``.

    Known rows are put where the path says before the network sees them, and their velocity
    is the path's, ``x1 - x0``, so any solver moves them exactly along it.
    """
    k = x1_known.shape[1]
    direction = x1_known - x0_known

    def v(x, t):
        if k == 0:
            return velocity(x, t)
        x = x.clone()
        x[:, :k] = x0_known + t.view(-1, 1, 1).to(x.dtype) * direction
        out = velocity(x, t).clone()
        out[:, :k] = direction
        return out

    return v


def _late(velocity, t0: float):
    """The ODE on [t0, 1] as one on [0, 1]: ``t = t0 + (1 - t0) s``, ``dx/ds = (1 - t0) v``."""

    def v(x, s):
        return (1 - t0) * velocity(x, t0 + (1 - t0) * s)

    return v


def assign_noise(known: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Order ``noise`` [N, 3] so that its first K rows are the ones matched to ``known`` [K, 3]
    at minimal total squared distance (the rest keep their order)."""
    k = len(known)
    if k == 0:
        return noise
    cost = torch.cdist(known.double(), noise.double()).pow(2).numpy()
    _, cols = linear_sum_assignment(cost)
    rest = np.setdiff1d(np.arange(len(noise)), cols)
    return noise[torch.from_numpy(np.concatenate([cols, rest]))]


@torch.no_grad()
def outpaint(model, known: torch.Tensor, n_points: int = 2048, steps: int = 20, solver: str = "midpoint",
             cond: torch.Tensor | None = None, cond_mask: torch.Tensor | None = None, guidance: float = 1.0,
             source: str = "gaussian", noise_std: float = 1.0, centroid: torch.Tensor | None = None,
             cov: torch.Tensor | None = None, resample: int = 0, resample_t: float = 0.5, seed: int = 0,
             replace: bool = True) -> torch.Tensor:
    """One crop of ``n_points`` (unit ball) whose first K points are ``known`` [K, 3].

    See the module docstring. ``cond`` [15] / ``cond_mask`` [groups] condition the network
    (default: none); ``source``/``noise_std``/``centroid``/``cov`` describe the noise at t = 0 as
    in :func:`mogen.flow.source_noise`. With ``replace=False`` the known points only shape the
    noise pairing and are then solved like the others (the "no outpainting" control: an
    independent crop); the first K rows of the result are still set to ``known``.
    """
    device = next(model.parameters()).device
    k = len(known)
    if k >= n_points:
        raise ValueError(f"{k} known points leave nothing to generate in a crop of {n_points}")
    if cond is None:
        cond = torch.zeros(model.config.cond_dim)
        cond_mask = torch.zeros(model.config.cond_groups, dtype=torch.bool)
    g = torch.Generator().manual_seed(seed)
    x1k = known.float().unsqueeze(0).to(device)

    def noise():
        c = None if centroid is None else centroid.view(1, 3).float()
        s = None if cov is None else cov.view(1, 3, 3).float()
        return source_noise((1, n_points, 3), source, noise_std, c, s, g)[0]

    velocity = guided_velocity(model, cond.view(1, -1).float().to(device), cond_mask.view(1, -1).to(device), guidance)
    n_steps = steps if solver == "dopri5" else steps_for_calls(solver, steps)
    x0 = assign_noise(known.float(), noise()).unsqueeze(0).to(device)
    v = replacement_velocity(velocity, x0[:, :k], x1k) if replace else velocity
    x, _ = integrate(v, x0, n_steps, solver)
    for _ in range(resample):
        # re-noise the whole crop to resample_t with the training pairing, solve the rest again
        x0 = pair_noise(x.cpu(), noise().unsqueeze(0)).to(device)
        xt = (1 - resample_t) * x0 + resample_t * x
        v = replacement_velocity(velocity, x0[:, :k], x1k) if replace else velocity
        x, _ = integrate(_late(v, resample_t), xt, max(1, round(n_steps * (1 - resample_t))), solver)
    x = x[0].float().cpu()
    x[:k] = known.float()
    return x


# ----------------------------------------------------------------------------- growing


@dataclass
class GrowConfig:
    """Settings of :func:`grow` (see the module docstring)."""

    length_um: float = 300.0  # stop when the path length along crop centres reaches this
    max_crops: int = 200
    steps: int = 20  # network calls per pass
    solver: str = "midpoint"
    guidance: float = 1.0
    resample: int = 0  # extra RePaint passes per crop
    resample_t: float = 0.5
    replace: bool = True  # False: independent crops at the same centres (the no-outpainting control)
    shell: float = 0.25  # exits: points farther than (1 - shell) R from the crop centre
    exit_link_um: float = 1.5  # exit points closer than this belong to one exit
    min_exit_frac: float = 0.03  # an exit holds at least this share of a crop's points
    max_known_frac: float = 0.75  # at most this share of a crop is given
    min_centre_gap: float = 0.5  # skip an exit within this x R of another crop's centre (growing back)
    moments: bool = True  # give the noise the centroid/covariance the known part implies
    cond_type: str | None = None  # neurite type name
    cond_ends: int | None = None  # cable ends per crop (branchiness: 2 a passing neurite, 3+ branches)
    cond_caliber: float | None = None  # tube radius at the crop centre, µm
    seed: int = 0


@dataclass
class Crop:
    centre_um: list
    parent: int
    known: int = 0
    generated: int = 0
    kept: int = 0
    spill: int = 0  # free points that fell inside earlier crops
    exits: int = 0
    seconds: float = 0.0


@dataclass
class Grown:
    """A grown neurite: ``points_um`` [P, 3], ``crop_of`` [P] (which crop made each point), crops."""

    points_um: np.ndarray
    crop_of: np.ndarray
    crops: list[Crop]
    radius_um: float
    path_um: float
    stop: str
    config: dict = field(default_factory=dict)

    @property
    def centres(self) -> np.ndarray:
        return np.array([c.centre_um for c in self.crops])


def find_exits(points_um: np.ndarray, centre: np.ndarray, radius: float, earlier: np.ndarray, n_points: int,
               cfg: GrowConfig) -> list[np.ndarray]:
    """Centres of next crops: clusters of a crop's points in its outer shell, outside earlier crops."""
    d = np.linalg.norm(points_um - centre, axis=1)
    cand = points_um[d > (1 - cfg.shell) * radius]
    if len(earlier):
        cand = cand[np.linalg.norm(cand[:, None] - earlier[None], axis=-1).min(1) > radius]
    if len(cand) < cfg.min_exit_frac * n_points:
        return []
    pairs = cKDTree(cand).query_pairs(cfg.exit_link_um, output_type="ndarray")
    from scipy.sparse import coo_matrix

    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(cand), len(cand)))
    n, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=n)
    big = np.flatnonzero(sizes >= cfg.min_exit_frac * n_points)
    return [cand[labels == c].mean(0) for c in big[np.argsort(-sizes[big])]]


def _noise_moments(known_unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroid 0 and the known part's second moment about the centre: the moments of a crop
    that continues the known part symmetrically through the centre (a neurite crosses it)."""
    return torch.zeros(3), known_unit.T.double() @ known_unit.double() / max(len(known_unit), 1)


def grow(model, state: dict, cfg: GrowConfig, seed_points_um: np.ndarray | None = None, progress: bool = True,
         generate=None) -> Grown:
    """Grow a neurite (see the module docstring); ``seed_points_um`` is a crop around the origin
    (µm) or None to sample one.

    ``generate(centre_um, known_unit, index) -> free points [M, 3] (unit ball around centre)``
    replaces the generator (:func:`surface_generator` grows along a real surface: the reference
    for seam quality); ``model`` is then unused.
    """
    from mogen.sampling import draw_conditions

    data, tcfg = state["data"], state["config"]
    radius = float(data["radius_um"])
    n = int(data["points_per_fragment"])
    source, noise_std = tcfg.get("source", "gaussian"), float(tcfg.get("noise_std", 1.0))
    cond, mask = condition_request(model, radius, cfg.cond_type, cfg.cond_ends, cfg.cond_caliber)
    rng = np.random.default_rng(cfg.seed)
    common = dict(n_points=n, steps=cfg.steps, solver=cfg.solver, cond=cond, cond_mask=mask, guidance=cfg.guidance,
                  source=source, noise_std=noise_std, resample=cfg.resample, resample_t=cfg.resample_t)
    t0 = time.perf_counter()
    if seed_points_um is None:
        centroid = cov = None
        if source == "moments":  # as sample.py: moments of a training crop (of the requested type), rotated
            from mogen.data.conditions import moments, neurite_type_index

            bank = state["cond_bank"]
            if cfg.cond_type is not None:
                same = bank[bank[:, neurite_type_index(cfg.cond_type)] > 0.5]
                bank = same if len(same) else bank
            centroid, cov = (m[0] for m in moments(draw_conditions(bank, 1, cfg.seed)))
        seed_unit = outpaint(model, torch.zeros(0, 3), centroid=centroid, cov=cov, seed=cfg.seed, **common)
        seed_unit = seed_unit / seed_unit.norm(dim=-1, keepdim=True).clamp(min=1.0)
        seed_points_um = seed_unit.numpy().astype(np.float64) * radius
    seed_points_um = np.asarray(seed_points_um, dtype=np.float64)
    crops = [Crop([0.0, 0.0, 0.0], -1, 0, len(seed_points_um), len(seed_points_um), 0, 0, time.perf_counter() - t0)]
    chunks, owners = [seed_points_um], [np.zeros(len(seed_points_um), np.int64)]
    queue = [(e, 0) for e in find_exits(seed_points_um, np.zeros(3), radius, np.zeros((0, 3)), n, cfg)]
    crops[0].exits = len(queue)
    path, stop = 0.0, "no exits left (every branch ended)"
    bar = tqdm(total=round(cfg.length_um), desc="grow", unit="µm", disable=not progress)
    while queue or path >= cfg.length_um:
        if path >= cfg.length_um:
            stop = f"length budget reached ({path:.0f} µm of path along crop centres)"
            break
        if len(crops) >= cfg.max_crops:
            stop = f"max_crops ({cfg.max_crops}) reached"
            break
        centre, parent = queue.pop(0)
        centres = np.array([c.centre_um for c in crops])
        others = np.delete(centres, parent, axis=0)
        if len(others) and np.linalg.norm(others - centre, axis=1).min() < cfg.min_centre_gap * radius:
            continue  # another branch already grew here
        t = time.perf_counter()
        pts = np.concatenate(chunks)
        inside = np.flatnonzero(np.linalg.norm(pts - centre, axis=1) < radius)
        max_known = int(cfg.max_known_frac * n)
        if len(inside) > max_known:
            inside = rng.choice(inside, max_known, replace=False)
        known = torch.from_numpy((pts[inside] - centre) / radius).float()
        if generate is not None:
            free = torch.as_tensor(generate(centre, known, len(crops)), dtype=torch.float32)
        else:
            centroid, cov = _noise_moments(known) if (source == "moments" and cfg.moments) else (None, None)
            if source == "moments" and centroid is None:  # no moments from the known part: a training crop's
                from mogen.data.conditions import moments

                centroid, cov = (m[0] for m in moments(draw_conditions(state["cond_bank"], 1, cfg.seed + len(crops))))
            x = outpaint(model, known, centroid=centroid, cov=cov, seed=cfg.seed + len(crops), replace=cfg.replace,
                         **common)
            free = x[len(known):]
        norm = free.norm(dim=-1, keepdim=True)
        outside = (norm[:, 0] > 1 + OUTSIDE_TOLERANCE).numpy()  # not part of a crop: dropped
        free = (free / norm.clamp(min=1.0)).numpy().astype(np.float64) * radius + centre  # the rest onto the sphere
        in_earlier = np.linalg.norm(free[:, None] - centres[None], axis=-1).min(1) < radius
        kept = free[~in_earlier & ~outside]
        index = len(crops)
        chunks.append(kept)
        owners.append(np.full(len(kept), index))
        exits = find_exits(kept, centre, radius, centres, n, cfg)
        queue.extend((e, index) for e in exits)
        step = float(np.linalg.norm(centre - centres[parent]))
        path += step
        bar.update(round(step))
        crops.append(Crop(centre.tolist(), parent, len(known), len(free), len(kept), int(in_earlier.sum()), len(exits),
                          time.perf_counter() - t))
    bar.close()
    return Grown(np.concatenate(chunks), np.concatenate(owners), crops, radius, path, stop, asdict(cfg))


def surface_generator(surface, anchor_um: np.ndarray, radius_um: float, n_points: int, seed: int = 0):
    """A ``generate`` for :func:`grow` that crops a real surface: N uniform points of the surface
    in the ball (as training crops are made), all of them free. Growth then follows the real
    neuron from ``anchor_um`` (the seed crop's centre), and its seams are the ceiling."""
    from mogen.data.fragments import Cropper

    cropper = Cropper(surface, radius_um)
    rng = np.random.default_rng(seed)

    def generate(centre, known, index):
        pts, _ = cropper.crop(np.asarray(anchor_um) + centre, n_points, rng)
        return np.zeros((0, 3)) if pts is None else pts / radius_um

    return generate


# ----------------------------------------------------------------------------- seams


def _local_pca(points: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals and surface variation (smallest eigenvalue / sum) by PCA over neighbours ``idx`` [P, k]."""
    nb = points[idx] - points[idx].mean(1, keepdims=True)
    w, v = np.linalg.eigh(np.einsum("pki,pkj->pij", nb, nb))
    return v[:, :, 0], w[:, 0] / np.maximum(w.sum(1), 1e-12)


def seam_quality(points_um: np.ndarray, crop_of: np.ndarray, seam_um: float = 1.0, k: int = 16,
                 pair_um: float = 0.5) -> dict:
    """Do crops meet without seams? Density, thickness and normals at seams vs inside crops.

    *Seam points* have a point of another crop within ``seam_um``; *interior points* have none
    within ``2 * seam_um``. Compared between them (ratios of seam to interior; 1 is seamless):

    - ``density_ratio``: median distance to the 8th nearest point (> 1: gaps where crops meet;
      < 1: points pile up, e.g. a surface generated twice),
    - ``thickness_ratio``: median surface variation, the smallest eigenvalue's share of the
      ``k``-neighbour covariance (a step, or two copies of a surface side by side, is thicker),
    - normal continuity: the median angle between the local PCA normals of point pairs closer
      than ``pair_um`` among seam points, for pairs from two crops (``cross_normal_angle_deg``)
      vs pairs from one (``within_normal_angle_deg``): a kink at the seam widens the first.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t, a = rng.uniform(-10, 10, 6000), rng.uniform(0, 2 * np.pi, 6000)
    >>> rod = np.stack([t, np.cos(a), np.sin(a)], 1)
    >>> q = seam_quality(rod, (t > 0).astype(int))      # one surface cut in two: no seam
    >>> round(q["density_ratio"], 1), round(q["thickness_ratio"], 1), abs(q["cross_normal_angle_deg"] - q["within_normal_angle_deg"]) < 3
    (1.0, 0.9, True)
    >>> bumped = rod + (t > 0)[:, None] * np.array([0, 0.3, 0])    # the second half shifted by 0.3 µm
    >>> q = seam_quality(bumped, (t > 0).astype(int))
    >>> round(q["thickness_ratio"], 1), q["cross_normal_angle_deg"] - q["within_normal_angle_deg"] > 3
    (1.1, True)
    """
    pts = np.asarray(points_um, dtype=np.float64)
    crop_of = np.asarray(crop_of)
    out = {"points": len(pts), "crops": int(len(np.unique(crop_of)))}
    if out["crops"] < 2:
        return out
    d_other = np.full(len(pts), np.inf)
    for c in np.unique(crop_of):  # distance of every point to the nearest point of another crop
        mine = crop_of == c
        d_other[mine] = cKDTree(pts[~mine]).query(pts[mine], distance_upper_bound=2 * seam_um)[0]
    seam, interior = d_other < seam_um, d_other > 2 * seam_um
    out.update(seam_points=int(seam.sum()), interior_points=int(interior.sum()))
    if seam.sum() < k or interior.sum() < k:
        return out
    d, idx = cKDTree(pts).query(pts, k=k + 1)
    d8 = d[:, min(8, k)]
    normals, variation = _local_pca(pts, idx[:, 1:])
    out["density_d8_seam_um"] = float(np.median(d8[seam]))
    out["density_d8_interior_um"] = float(np.median(d8[interior]))
    out["density_ratio"] = out["density_d8_seam_um"] / out["density_d8_interior_um"]
    out["thickness_seam"] = float(np.median(variation[seam]))
    out["thickness_interior"] = float(np.median(variation[interior]))
    out["thickness_ratio"] = out["thickness_seam"] / max(out["thickness_interior"], 1e-12)
    s = np.flatnonzero(seam)
    pairs = cKDTree(pts[s]).query_pairs(pair_um, output_type="ndarray")
    if len(pairs):
        i, j = s[pairs[:, 0]], s[pairs[:, 1]]
        angle = np.degrees(np.arccos(np.clip(np.abs((normals[i] * normals[j]).sum(1)), 0, 1)))
        cross = crop_of[i] != crop_of[j]
        if cross.any() and (~cross).any():
            out["cross_normal_angle_deg"] = float(np.median(angle[cross]))
            out["within_normal_angle_deg"] = float(np.median(angle[~cross]))
    return out


# ----------------------------------------------------------------------------- seeds


def seed_from(spec: str, radius: float, n_points: int, seed: int = 0):
    """A seed crop from ``--seed-from``: ``(points µm around the origin, description, surface, anchor µm)``.

    ``sample``: points None (the generator makes one), no surface. ``navis:I`` (navis example
    neuron I) or an SWC/mesh file: a crop of that neuron's surface around a random point on its
    cable (``anchor``), and the surface (for :func:`surface_generator`)."""
    if spec == "sample":
        return None, "sampled", None, None
    from mogen.data.fragments import Cropper, anchors_along_cable, neuron_surface
    from mogen.data.surface import skeleton_geometry

    if spec.startswith("navis:"):
        from mogen.data.neuron import navis_example

        try:
            neuron = navis_example(int(spec[6:]))
        except (ValueError, IndexError):
            raise UsageError(f"--seed-from {spec!r}: expected navis:I with I in 0..4") from None
    else:
        from mogen.data.neuron import load_file

        if not Path(spec).is_file():
            raise UsageError(f"--seed-from {spec!r}: expected sample, navis:I or an existing SWC/mesh file")
        neuron = load_file(spec)
    rng = np.random.default_rng(seed)
    xyz, _, _, pidx = skeleton_geometry(neuron.skeleton)
    anchors, _ = anchors_along_cable(xyz, pidx, radius, rng)
    surface = neuron_surface(neuron, radius)
    cropper = Cropper(surface, radius)
    for anchor in anchors[rng.permutation(len(anchors))]:
        pts, _ = cropper.crop(anchor, n_points, rng, 0.01 * np.pi * radius**2)
        if pts is not None:
            return pts, f"{neuron.source} around {np.round(anchor, 2).tolist()} µm", surface, anchor
    raise UsageError(f"--seed-from {spec!r}: no crop with surface found")


# ----------------------------------------------------------------------------- command


OUTPUTS = (r"grow\.json", r"neurite\.(npz|swc|png|ply|obj|stl|off|glb)")  # what --force removes: this command's own files
RECORD_KEYS = ("checkpoint", "crops", "per_crop")  # what marks grow.json as ours


def add_arguments(p) -> None:
    from mogen.data.conditions import NEURITE_TYPES
    from mogen.pretrained import available

    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--ckpt", help="checkpoint file or run directory written by train.py")
    which.add_argument("--pretrained", metavar="NAME", help=f"a bundled generator ({', '.join(available()) or 'none bundled'})")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--length-um", type=float, default=300.0, help="stop when the path along crop centres is this long")
    p.add_argument("--max-crops", type=int, default=200)
    p.add_argument("--seed-from", default="sample", help="sample | navis:I (navis example neuron I) | an SWC or mesh file")
    p.add_argument("--type", choices=NEURITE_TYPES, help="neurite type every crop is conditioned on")
    p.add_argument("--ends", type=int, help="cable ends every crop is conditioned on (branchiness: 1 a tip, 2 a neurite "
                                            "passing through, 3+ branch points)")
    p.add_argument("--caliber", type=float, help="tube radius at each crop's centre, µm")
    p.add_argument("--steps", type=int, default=20, help="network calls per crop pass")
    p.add_argument("--solver", default="midpoint", choices=[s for s in SOLVERS if s != "dopri5"])
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1: none)")
    p.add_argument("--resample", type=int, default=0, help="extra RePaint passes per crop (each costs ~steps/2 calls)")
    p.add_argument("--no-replace", action="store_true", help="control: independent crops at the same centres "
                                                             "(no outpainting); seams show what replacement buys")
    p.add_argument("--shell", type=float, default=0.25, help="exits are found in the outer shell of this fraction of R")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default="ema", choices=("ema", "model"))
    p.add_argument("--device", default="auto")
    p.add_argument("--voxel-um", type=float, default=0.5, help="skeleton voxel (µm; more than half the thickest radius)")
    p.add_argument("--mesh-format", default="ply", choices=("ply", "obj", "stl", "off", "glb"))
    p.add_argument("--no-mesh", action="store_true")
    p.add_argument("--force", action="store_true", help="replace this command's earlier outputs in --out")


def check_arguments(args) -> None:
    from mogen.solvers import CALLS_PER_STEP

    if not (np.isfinite(args.length_um) and args.length_um > 0):
        raise UsageError(f"--length-um must be a positive number, got {args.length_um}")
    if args.max_crops < 1:
        raise UsageError(f"--max-crops must be at least 1, got {args.max_crops}")
    if args.steps < CALLS_PER_STEP[args.solver]:
        raise UsageError(f"--steps must be at least {CALLS_PER_STEP[args.solver]} for {args.solver}, got {args.steps}")
    if args.resample < 0:
        raise UsageError(f"--resample must be >= 0, got {args.resample}")
    if not 0 < args.shell < 1:
        raise UsageError(f"--shell must be in (0, 1), got {args.shell}")
    if args.ends is not None and args.ends < 0:
        raise UsageError(f"--ends must be >= 0, got {args.ends}")
    if args.caliber is not None and not (np.isfinite(args.caliber) and args.caliber > 0):
        raise UsageError(f"--caliber must be a positive number of µm, got {args.caliber}")
    if not np.isfinite(args.guidance):
        raise UsageError(f"--guidance must be finite, got {args.guidance}")
    if not (np.isfinite(args.voxel_um) and args.voxel_um > 0):
        raise UsageError(f"--voxel-um must be a positive number of µm, got {args.voxel_um}")
    spec = args.seed_from
    if spec != "sample" and not spec.startswith("navis:") and not Path(spec).is_file():
        raise UsageError(f"--seed-from {spec!r}: expected sample, navis:I or an existing SWC/mesh file")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if (out / "grow.json").exists() and not args.force:
        raise UsageError(f"{out / 'grow.json'} exists; pass --force to replace this command's earlier outputs")
    check_own(out / "grow.json", lambda p: json_with(p, RECORD_KEYS), "mogen grow")


def outputs(args) -> dict:
    """What this run writes, locked for its duration by :func:`mogen.cli.run_command`."""
    return {"--out": Path(args.out)}


def run(args) -> int:
    from mogen.data.conditions import neurite_type_index
    from mogen.data.swc import NEURITE_TO_SWC
    from mogen.export import export_neurite
    from mogen.runtime import pick_device
    from mogen.sampling import load_generator

    check_arguments(args)
    if args.pretrained:
        from mogen.pretrained import checkpoint_path

        ckpt = checkpoint_path(args.pretrained)
    else:
        ckpt = args.ckpt
    model, state = load_generator(ckpt, pick_device(args.device), args.weights)
    radius, n = float(state["data"]["radius_um"]), int(state["data"]["points_per_fragment"])
    condition_request(model, float(state['data']['radius_um']), args.type, args.ends, args.caliber)  # refuse bad conditions before any work
    seed_pts, seed_note, _, _ = seed_from(args.seed_from, radius, n, args.seed)
    cfg = GrowConfig(length_um=args.length_um, max_crops=args.max_crops, steps=args.steps, solver=args.solver,
                     guidance=args.guidance, resample=args.resample, replace=not args.no_replace, shell=args.shell,
                     cond_type=args.type, cond_ends=args.ends, cond_caliber=args.caliber, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.force:
        remove_outputs(out, OUTPUTS)
    t0 = time.perf_counter()
    grown = grow(model, state, cfg, seed_pts)
    grow_s = time.perf_counter() - t0
    seams = seam_quality(grown.points_um, grown.crop_of)
    with atomic_path(out / "neurite.npz") as tmp:  # read back by `python -m mogen.evaluate.whole`
        np.savez_compressed(tmp, points_um=grown.points_um.astype(np.float32), crop_of=grown.crop_of,
                            centres_um=grown.centres, parents=np.array([c.parent for c in grown.crops]))
    swc_type = NEURITE_TO_SWC[neurite_type_index(args.type)] if args.type else 3
    t1 = time.perf_counter()
    exported = export_neurite(grown.points_um, out, "neurite", args.voxel_um, root=np.zeros(3), swc_type=swc_type,
                              mesh_format=args.mesh_format, mesh=not args.no_mesh,
                              header=f"grown by mogen grow from {ckpt}, seed {seed_note}",
                              title=f"grown: {len(grown.crops)} crops, {grown.path_um:.0f} µm path")
    export_s = time.perf_counter() - t1
    record = {
        "checkpoint": str(Path(state["path"]).resolve()), "pretrained": args.pretrained, "seed_from": seed_note,
        "config": grown.config, "radius_um": radius, "points_per_crop": n, "crops": len(grown.crops),
        "path_um": grown.path_um, "stop": grown.stop, "points": len(grown.points_um),
        "spill_frac": sum(c.spill for c in grown.crops) / max(sum(c.generated for c in grown.crops[1:]), 1),
        "seconds": {"grow": round(grow_s, 1), "export": round(export_s, 1)},
        "seams": seams, "export": exported, "per_crop": [asdict(c) for c in grown.crops],
    }
    write_json(out / "grow.json", record)
    sk = exported["skeleton"]
    print(f"grew {len(grown.crops)} crops ({grown.path_um:.0f} µm path; {grown.stop}) in {grow_s:.0f} s -> "
          f"{out / 'neurite.swc'}: {sk['cable_um']:.0f} µm cable, {sk['branch_points']} branch points, "
          f"{sk['roots']} root; mesh {'watertight' if exported.get('mesh', {}).get('watertight') else 'not written or open'}; "
          f"seam density ratio {seams.get('density_ratio', float('nan')):.2f}")
    return 0
