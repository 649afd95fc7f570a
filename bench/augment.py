"""Timing of the reconstruction benchmark's stages, and the renderer's calibration.

    python bench/augment.py --data DATASET_DIR [--threads 1]
    python bench/augment.py --calibrate ../shared/data/skeletons [--crops 30]

Timing: one benchmark volume (default VolumeSpec) of the dataset's train fragments: packing +
rendering, over-segmentation, candidates + views, ground truth (cable by skeletonisation), the
EM-like raw, and one classifier run on the volume's candidates. One line per stage: wall and
CPU seconds of this process.

Calibration: 2,048-point, R = 10 µm crops of real SWC skeletons rendered by the renderer at
100 nm, against the skeletons' exact tubes in the crop: median IoU and volume ratio per
(dilate, erode) pair; the defaults in mogen.augment.render come from this.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time

import numpy as np


def timed(label: str, fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    print(f"{label:<62s} wall {time.perf_counter() - w:7.2f} s   cpu {time.process_time() - c:7.2f} s", flush=True)
    return out


def bench_stages(args) -> None:
    from mogen.augment.em import em_raw
    from mogen.augment.volume import Obj, VolumeSpec, cut_candidates, render_volume
    from mogen.data import read_split
    from mogen.evaluate.classifier import score, train_classifier
    from mogen.evaluate.replay import VolumeTruth

    spec = VolumeSpec()
    sp = read_split(args.data, "train")
    rng = np.random.default_rng(0)
    objs = [Obj(np.asarray(sp.points[i], float) * sp.radius_um, sp.neuron_id[i], "real", str(i))
            for i in rng.choice(len(sp), spec.objects, replace=False)]
    vol = timed(f"pack + render {spec.objects} fragments, {spec.extent_um} µm cube at {spec.voxel_nm[0]:g} nm",
                lambda: render_volume(objs, spec, seed=0))
    placed = sum(p is not None for p in vol.placements)
    print(f"    {vol.labels.size / 1e6:.1f} M voxels, {placed} objects placed, {(vol.labels > 0).mean():.0%} filled")
    cut = timed("over-segment + candidates + views", lambda: cut_candidates(vol.labels, vol.grid, spec, seed=0))
    print(f"    {int(cut.supervoxels.max())} supervoxels, {len(cut.candidates)} candidates, "
          f"{cut.candidates.false_fraction:.0%} false")
    truth = timed("ground truth (cable by skeletonisation)",
                  lambda: VolumeTruth.build(cut.supervoxels, vol.labels, cut.candidates.edges, vol.grid.voxel_um))
    print(f"    {truth.cable_mm:.3f} mm of cable")
    timed("EM-like raw", lambda: em_raw(vol.labels, vol.grid.voxel_nm, seed=0))
    m = timed(f"classifier: {args.steps} steps, batch 32, {spec.points} points",
              lambda: train_classifier((cut.views, cut.candidates.same.astype(np.float32)), steps=args.steps, seed=0))
    timed(f"score {len(cut.views)} candidates", lambda: score(m, cut.views))


def calibrate(args) -> None:
    from mogen.augment.render import Grid, points_to_solid, skeleton_to_solid
    from mogen.data import load_file
    from mogen.data.fragments import crop_fragments, neuron_surface
    from mogen.data.surface import fill_radii, skeleton_geometry

    files = sorted(glob.glob(f"{args.calibrate}/**/*.swc", recursive=True))
    rng = np.random.default_rng(0)
    pairs = [(0.5, 0.35), (0.6, 0.45), (0.7, 0.55), (0.8, 0.65), (0.7, 0.7)]
    res = {p: [] for p in pairs}
    done = 0
    while done < args.crops:
        f = files[rng.integers(len(files))]
        try:
            n = load_file(f, "calibration")
        except Exception as exc:  # noqa: BLE001 - a file the prepare step would skip
            print(f"skip {f}: {exc}")
            continue
        xyz, rad, lab, pidx = skeleton_geometry(n.skeleton)
        rad, _ = fill_radii(rad, lab == 1)
        anchor = xyz[rng.integers(len(xyz))]
        frags, ok = crop_fragments(neuron_surface(n, 10.0), anchor[None], 10.0, 2048, rng)
        if not len(ok):
            continue
        grid = Grid.around(anchor, 8.0, (100, 100, 100))
        zc, yc, xc = grid.centres()
        ball = (xc[None, None] - anchor[0]) ** 2 + (yc[None, :, None] - anchor[1]) ** 2 + (zc[:, None, None] - anchor[2]) ** 2 <= 100
        exact = skeleton_to_solid(xyz, pidx, rad, grid) & ball
        for d, e in pairs:
            s = points_to_solid(frags[0] * 10.0 + anchor, grid, d, e)
            res[(d, e)].append(((s & exact).sum() / max((s | exact).sum(), 1), s.sum() / max(exact.sum(), 1)))
        done += 1
    for (d, e), v in res.items():
        v = np.array(v)
        print(f"dilate {d:.2f} erode {e:.2f}: median IoU {np.median(v[:, 0]):.3f}, volume ratio {np.median(v[:, 1]):.2f} "
              f"({len(v)} crops)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="dataset directory from `mogen prepare` (timing)")
    p.add_argument("--calibrate", metavar="SWC_DIR", help="folder of SWC files (renderer calibration)")
    p.add_argument("--crops", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=1000, help="classifier steps (the benchmark's default)")
    args = p.parse_args()
    if not (args.data or args.calibrate):
        p.error("give --data DATASET_DIR (timing) and/or --calibrate SWC_DIR")
    import torch

    torch.set_num_threads(args.threads)
    if args.data:
        bench_stages(args)
    if args.calibrate:
        calibrate(args)


if __name__ == "__main__":
    from common import run  # (bench/)

    sys.exit(run(main))
