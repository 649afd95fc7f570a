"""Skeletons, meshes and previews of generated surfaces: SWC + mesh + PNG per cloud.

    mogen export --samples runs/samples/samples.npz --out runs/export [--n 16] [--mesh-format ply]

For each cloud (in µm; a unit-ball samples file is scaled by its ``radius_um``) writes

- ``cloud_0000.swc``: the skeleton as ONE tree with radii (:func:`mogen.skeleton.skeletonize`,
  written by :func:`mogen.data.swc.write_swc`, which refuses anything but a tree),
- ``cloud_0000.ply`` (or ``--mesh-format``): a watertight surface mesh
  (:func:`mogen.meshing.watertight_mesh`),
- ``cloud_0000.png``: points, skeleton and mesh side by side,

and ``export.json``: per cloud the skeleton's size (nodes, cable, branch points, leaves,
radii), the mesh's (faces, watertight, volume, pieces), the sanity checks
(:func:`mogen.simulator.sanity_issues`) and, when the ``neuron`` package is installed, what
NEURON made of the SWC (sections, total length). ``mogen grow`` exports its grown neurites
with the same function, :func:`export_neurite`.

Fragments are crops: their tubes end in open cuts at the crop sphere; the mesh closes them.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> rng = np.random.default_rng(0)
>>> t, a = rng.uniform(-8, 8, 3000), rng.uniform(0, 2 * np.pi, 3000)
>>> rod = np.stack([t, 0.4 * np.cos(a), 0.4 * np.sin(a)], 1)
>>> rec = export_neurite(rod, pathlib.Path(tempfile.mkdtemp()), "rod", preview=False, check_neuron=False)
>>> rec["skeleton"]["roots"], rec["mesh"]["watertight"], rec["sanity_issues"]
(1, True, [])
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mogen.errors import UsageError
from mogen.outputs import check_own, json_with, remove_outputs, write_json

DESCRIPTION = """Turn generated surface clouds (samples.npz) into SWC skeletons, watertight meshes and previews.

Writes OUT/cloud_NNNN.swc (one tree with radii), OUT/cloud_NNNN.ply (watertight mesh), OUT/cloud_NNNN.png
and OUT/export.json (sizes, watertightness, sanity checks, NEURON's section count and length).
"""

OUTPUTS = (r"export\.json", r"cloud_\d{4,}\.(swc|png|ply|obj|stl|off|glb)")  # what --force removes: this command's own files
RECORD_KEYS = ("samples", "summary", "clouds")  # what marks export.json as ours


def export_neurite(points_um: np.ndarray, out_dir: Path, stem: str, voxel_um: float | None = None,
                   mesh_voxel_um: float | None = None, root: np.ndarray | None = None, swc_type: int = 3,
                   mesh_format: str = "ply", mesh: bool = True, preview: bool = True, check_neuron: bool = True,
                   header: str = "", title: str | None = None) -> dict:
    """Skeleton (SWC), mesh and preview of one surface cloud (µm) into ``out_dir/stem.*``.

    ``voxel_um``: skeleton voxel (default ``mogen.skeleton.EXPORT_VOXEL_UM``, 0.5 µm); ``mesh_voxel_um``:
    mesh voxel (default :func:`mogen.meshing.default_voxel`); ``root``: a point whose nearest
    skeleton node becomes the SWC root. Returns the record written to ``export.json``.
    """
    from mogen.data.swc import write_swc
    from mogen.simulator import neuron_available, neuron_load, sanity_issues
    from mogen.skeleton import EXPORT_VOXEL_UM, skeletonize

    pts = np.asarray(points_um, dtype=np.float64)
    out_dir = Path(out_dir)
    times = {}
    t0 = time.perf_counter()
    voxel = EXPORT_VOXEL_UM if voxel_um is None else float(voxel_um)
    sk = skeletonize(pts, voxel, root=root)
    times["skeleton_s"] = time.perf_counter() - t0
    swc = write_swc(out_dir / f"{stem}.swc", sk.nodes, sk.parents, sk.radii, swc_type,
                    header=f"skeleton of {len(pts)} surface points, voxel {voxel:.3g} um\n{header}")
    record = {
        "points": len(pts),
        "swc": swc.name,
        "skeleton": {"voxel_um": voxel, "nodes": len(sk), "roots": sk.n_roots, "cable_um": sk.cable_um,
                     "branch_points": sk.n_branch_points, "leaves": sk.n_leaves,
                     "radius_median_um": float(np.median(sk.radii)), "radius_max_um": float(sk.radii.max())},
        "sanity_issues": sanity_issues(sk),
    }
    if check_neuron:
        if neuron_available():
            t = time.perf_counter()
            record["neuron"] = neuron_load(swc)
            times["neuron_s"] = time.perf_counter() - t
        else:
            record["neuron"] = "not checked: the neuron package is not installed (pip install mogen[sim])"
    surface = None
    if mesh:
        from mogen.data.mesh import write_mesh
        from mogen.meshing import default_voxel, watertight_mesh

        t = time.perf_counter()
        mvox = default_voxel(pts, sk) if mesh_voxel_um is None else float(mesh_voxel_um)
        surface = watertight_mesh(pts, mvox, skeleton=sk)
        pieces = surface.split(only_watertight=False) if len(surface.faces) else []
        volumes = sorted((abs(float(p.volume)) for p in pieces), reverse=True)
        record["mesh"] = {"file": f"{stem}.{mesh_format}", "voxel_um": mvox, "faces": len(surface.faces),
                          "watertight": bool(surface.is_watertight), "volume_um3": float(surface.volume),
                          "area_um2": float(surface.area), "pieces": len(pieces),
                          "largest_piece_volume_frac": volumes[0] / max(sum(volumes), 1e-12) if volumes else 0.0}
        write_mesh(surface, out_dir / f"{stem}.{mesh_format}", require_watertight=False)
        times["mesh_s"] = time.perf_counter() - t
    if preview:
        from mogen.preview import plot_neurite

        plot_neurite(pts, out_dir / f"{stem}.png", skeleton=sk, mesh=surface, title=title or stem)
        record["preview"] = f"{stem}.png"
    record["seconds"] = {k: round(v, 2) for k, v in times.items()}
    return record


def add_arguments(p) -> None:
    p.add_argument("--samples", required=True, help="samples.npz written by sample.py / mogen sample")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--n", type=int, default=16, help="export the first N clouds (0: all)")
    p.add_argument("--voxel-um", type=float, default=0.5, help="skeleton voxel in µm: must exceed half the thickest "
                                                               "radius to skeletonise (0.5 suits EM neurites)")
    p.add_argument("--mesh-voxel-um", type=float, default=0.0, help="mesh voxel in µm (0: a third of the median radius)")
    p.add_argument("--mesh-format", default="ply", choices=("ply", "obj", "stl", "off", "glb"))
    p.add_argument("--no-mesh", action="store_true", help="skeletons only")
    p.add_argument("--no-preview", action="store_true")
    p.add_argument("--no-neuron", action="store_true", help="skip loading each SWC in NEURON")
    p.add_argument("--force", action="store_true", help="replace this command's earlier outputs in --out")


def check_arguments(args) -> None:
    if args.n < 0:
        raise UsageError(f"--n must be >= 0 (0: all), got {args.n}")
    if not (np.isfinite(args.voxel_um) and args.voxel_um > 0):
        raise UsageError(f"--voxel-um must be a positive number of µm, got {args.voxel_um}")
    if not np.isfinite(args.mesh_voxel_um) or args.mesh_voxel_um < 0:
        raise UsageError(f"--mesh-voxel-um must be >= 0 (0: automatic), got {args.mesh_voxel_um}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if (out / "export.json").exists() and not args.force:
        raise UsageError(f"{out / 'export.json'} exists; pass --force to replace this command's earlier outputs")
    check_own(out / "export.json", lambda p: json_with(p, RECORD_KEYS), "mogen export")


def outputs(args) -> dict:
    """What this run writes, locked for its duration by :func:`mogen.cli.run_command`."""
    return {"--out": Path(args.out)}


def run(args) -> int:
    from mogen.samples import read_samples

    check_arguments(args)
    samples = read_samples(args.samples)
    clouds = samples.points_um
    n = len(clouds) if args.n == 0 else min(args.n, len(clouds))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.force:
        remove_outputs(out, OUTPUTS)
    swc_types = None
    if samples.neurite_type is not None:
        from mogen.data.swc import NEURITE_TO_SWC

        swc_types = [NEURITE_TO_SWC.get(int(t), 3) for t in samples.neurite_type]
    records = []
    for i in tqdm(range(n), desc="export", unit="cloud"):
        rec = export_neurite(clouds[i], out, f"cloud_{i:04d}", args.voxel_um, args.mesh_voxel_um or None,
                             swc_type=swc_types[i] if swc_types else 3, mesh_format=args.mesh_format,
                             mesh=not args.no_mesh, preview=not args.no_preview, check_neuron=not args.no_neuron,
                             header=f"from {Path(args.samples).resolve()} cloud {i}")
        records.append({"cloud": i, **rec})
    summary = _summary(records)
    write_json(out / "export.json", {"samples": str(Path(args.samples).resolve()), "n": n, "summary": summary,
                                     "clouds": records})
    print(f"{n} clouds -> {out}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    return 0


def _summary(records: list[dict]) -> dict:
    """Counts over exported clouds: single-root trees, watertight meshes, NEURON loads, sanity-clean."""
    out = {"one_root": sum(r["skeleton"]["roots"] == 1 for r in records),
           "sanity_clean": sum(not r["sanity_issues"] for r in records)}
    meshes = [r["mesh"] for r in records if "mesh" in r]
    if meshes:
        out["watertight"] = sum(m["watertight"] for m in meshes)
    loaded = [r["neuron"] for r in records if isinstance(r.get("neuron"), dict)]
    if loaded:
        out["neuron_loaded"] = len(loaded)
    out["of"] = len(records)
    return out
