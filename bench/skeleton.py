#!/usr/bin/env python
"""How good are the exported skeletons and meshes? Surface points of real neuron pieces -> SWC, mesh.

    python bench/skeleton.py --pieces 6 --length-um 150

Pieces of the navis example neurons (their skeletons with radii are the truth) are turned into
surface points (their tube surface at ``--density`` points per µm²) and then into a skeleton by

- ``mogen.skeleton`` at voxels of 0.5 (the export default) and 1 µm (the fragment morphometrics'),
- navis/skeletor's wavefront method on the watertight mesh of the points (the tool prepare uses
  for lone meshes), to see whether a mesh skeletoniser would serve better.

Per method (mean over pieces): precision and recall of the cable within 1 µm (share of the
skeleton within 1 µm of the true one, and vice versa), median relative radius error, roots,
seconds; and for the meshes: watertight share, pieces, seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mogen.data.surface import TubeSurface, fill_radii, skeleton_geometry  # noqa: E402
from mogen.metrics.neurite import cut_piece  # noqa: E402
from mogen.skeleton import skeletonize  # noqa: E402


def dense(nodes, parents, radii, step=0.1):
    out, rr = [nodes], [radii]
    for i in np.flatnonzero(parents >= 0):
        a, b = nodes[i], nodes[parents[i]]
        k = int(np.ceil(np.linalg.norm(b - a) / step))
        if k > 1:
            t = np.linspace(0, 1, k + 1)[1:-1, None]
            out.append(a + t * (b - a))
            rr.append(radii[i] + t[:, 0] * (radii[parents[i]] - radii[i]))
    return np.concatenate(out), np.concatenate(rr)


def score(truth, nodes, parents, radii):
    t, tr = truth
    s, sr = dense(nodes, parents, radii)
    d1, i1 = cKDTree(t).query(s)
    d2 = cKDTree(s).query(t)[0]
    return {"precision": float((d1 < 1).mean()), "recall": float((d2 < 1).mean()),
            "radius_rel_err": float(np.median(np.abs(sr - tr[i1]) / tr[i1])), "roots": int((parents < 0).sum())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pieces", type=int, default=6)
    p.add_argument("--length-um", type=float, default=150.0)
    p.add_argument("--density", type=float, default=20.0, help="surface points per µm²")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-mesh", action="store_true")
    args = p.parse_args()
    from mogen.data.neuron import navis_example, skeletonize_mesh
    from mogen.meshing import watertight_mesh

    rng = np.random.default_rng(args.seed)
    rows: dict[str, list] = {}
    mesh_rows = []
    for k in range(args.pieces):
        neuron = navis_example(k % 5)
        xyz, r, _, pidx = skeleton_geometry(neuron.skeleton)
        r, _ = fill_radii(r, np.asarray(neuron.node_types) == 1, neuron.id)
        piece = cut_piece(xyz, pidx, r, int(rng.integers(len(xyz))), args.length_um)
        child = np.flatnonzero(piece.parents >= 0)
        surf = TubeSurface(piece.nodes[piece.parents[child]], piece.nodes[child], piece.radii[piece.parents[child]],
                           piece.radii[child])
        pts = surf.sample(int(surf.area * args.density), rng)
        truth = dense(piece.nodes, piece.parents, piece.radii)
        for name, voxel in (("mogen.skeleton voxel 0.5", 0.5), ("mogen.skeleton voxel 1.0", 1.0)):
            t0 = time.perf_counter()
            sk = skeletonize(pts, voxel)
            rows.setdefault(name, []).append({**score(truth, sk.nodes, sk.parents, sk.radii), "s": time.perf_counter() - t0})
        if not args.no_mesh:
            t0 = time.perf_counter()
            mesh = watertight_mesh(pts)
            mesh_rows.append({"watertight": mesh.is_watertight, "pieces": len(mesh.split(only_watertight=False)),
                              "s": time.perf_counter() - t0})
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sk2 = skeletonize_mesh(mesh, "piece")
            x2, r2, _, p2 = skeleton_geometry(sk2)
            rows.setdefault("skeletor wavefront on the mesh", []).append({**score(truth, x2, p2, r2),
                                                                        "s": time.perf_counter() - t0})
        print(f"piece {k}: {piece.cable_um:.0f} µm, {piece.n_branch_points} branch points, {len(pts)} points", flush=True)
    lines = [f"Skeletons from surface points of {args.pieces} pieces of the navis neurons (`python bench/skeleton.py "
             f"--pieces {args.pieces} --length-um {args.length_um:g} --density {args.density:g}`), mean over pieces:", "",
             "| method | precision (1 µm) | recall (1 µm) | radius rel. error | roots | s |", "|---|---|---|---|---|---|"]
    for name, rs in rows.items():
        m = {k: np.mean([r[k] for r in rs]) for k in rs[0]}
        lines.append(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['radius_rel_err']:.2f} | {m['roots']:.1f} | {m['s']:.2f} |")
    if mesh_rows:
        lines += ["", f"Meshes (`mogen.meshing.watertight_mesh`, default voxel): watertight {sum(r['watertight'] for r in mesh_rows)} "
                      f"of {len(mesh_rows)}, pieces per mesh {np.mean([r['pieces'] for r in mesh_rows]):.1f}, "
                      f"{np.mean([r['s'] for r in mesh_rows]):.1f} s each."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
