"""End to end: python -m eval.generation on a tiny synthetic dataset, plus its refusals."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import fragments, tube_dataset, wandb_history
from mogen.data.dataset import manifest_hash, write_dataset
from mogen.evaluate.generation import main
from mogen.samples import write_samples as save_samples

N = 256


def tubes(n, rng):
    t = rng.uniform(-0.9, 0.9, (n, N))
    a = rng.uniform(0, 2 * np.pi, (n, N))
    r = rng.uniform(0.03, 0.08, (n, 1))
    x = np.stack([t, r * np.cos(a), r * np.sin(a)], -1)
    q = np.linalg.qr(rng.normal(size=(n, 3, 3)))[0]  # random orientation per fragment
    return np.einsum("nij,npj->npi", q, x).astype(np.float32)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(0)
    write_dataset(root, {"a": fragments(tubes(20, rng)), "b": fragments(tubes(20, rng)), "c": fragments(tubes(16, rng))},
                  {"train": ["a", "b"], "test": ["c"]}, radius_um=10.0)
    return root


def write_samples(path, points_unit, radius=10.0, trained_on=("a", "b"), dataset=None):
    prov = {"solver": "euler", "steps": 8, "guidance": 1.0, "train_neurons": list(trained_on),
            "manifest_hash": manifest_hash(dataset) if dataset is not None else None}
    return save_samples(path, points_unit * radius, radius_um=radius, provenance=prov)


FAST = ["--cd-points", "32", "--emd-n", "6", "--emd-points", "16", "--morph-n", "4", "--mem-n", "6", "--critic-n", "0",
        "--threads", "1"]


def test_report_with_baselines(dataset, tmp_path):
    samples = write_samples(tmp_path / "s.npz", tubes(20, np.random.default_rng(1)), dataset=dataset)
    out = tmp_path / "report"
    cache = tmp_path / "cache"
    args = ["--reference", str(dataset), "--n", "12", "--baselines", "--cache", str(cache), *FAST]
    assert main(["--samples", str(samples), "--out", str(out), *args]) == 0
    report = json.loads((out / "report.json").read_text())
    rows = report["rows"]
    assert list(rows) == ["generated", "real_train", "memoriser", "gaussian_blob", "random_cylinder"]
    assert all(r["n"] == 12 for r in rows.values())
    # the floors are far worse than real data; the memoriser is caught
    assert rows["gaussian_blob"]["feature_mmd"] > 5 * rows["real_train"]["feature_mmd"]
    assert rows["memoriser"]["memorization"]["copies"] == 6
    assert rows["generated"]["memorization"]["copies"] <= 2  # like real data: chance only
    md = (out / "report.md").read_text()
    assert "| generated |" in md and "Gaussian blob (floor)" in md
    for png in ("features.png", "fragments.png", "morphometrics.png", "memorization.png"):
        assert (out / png).stat().st_size > 1000
    # scoring other samples reuses the cached reference side and baseline rows
    assert len(list(cache.glob("*.pt"))) == 1
    other = write_samples(tmp_path / "s2.npz", tubes(20, np.random.default_rng(9)), dataset=dataset)
    assert main(["--samples", str(other), "--out", str(tmp_path / "r2"), *args]) == 0
    again = json.loads((tmp_path / "r2" / "report.json").read_text())["rows"]
    assert again["gaussian_blob"] == rows["gaussian_blob"]
    assert again["generated"]["feature_mmd"] != rows["generated"]["feature_mmd"]
    # a second run must not overwrite silently
    assert main(["--samples", str(samples), "--reference", str(dataset), "--out", str(out)]) == 2


def test_refuses_mismatched_radius_and_leaked_cells(dataset, tmp_path, capsys):
    pts = tubes(4, np.random.default_rng(2))
    bad_radius = write_samples(tmp_path / "r.npz", pts, radius=5.0, dataset=dataset)
    assert main(["--samples", str(bad_radius), "--reference", str(dataset), "--out", str(tmp_path / "o1")]) == 1
    assert "crop radius 5.0" in capsys.readouterr().err
    leaked = write_samples(tmp_path / "l.npz", pts, trained_on=("a", "c"), dataset=dataset)
    assert main(["--samples", str(leaked), "--reference", str(dataset), "--out", str(tmp_path / "o2")]) == 2
    assert "trained on cells that are in the test split" in capsys.readouterr().err
    foreign = write_samples(tmp_path / "f.npz", pts)
    assert main(["--samples", str(foreign), "--reference", str(dataset), "--out", str(tmp_path / "o4")]) == 2
    assert "--allow-foreign-generator" in capsys.readouterr().err
    assert main(["--baselines", "--reference", str(tmp_path), "--out", str(tmp_path / "o3")]) == 1
    assert "no manifest.json" in capsys.readouterr().err


def test_report_numbers_carry_n_floor_outside_fraction_and_provenance(dataset, tmp_path):
    pts = tubes(12, np.random.default_rng(3))
    pts[:3, :32] *= 1.5  # some points of three clouds leave the crop ball
    outside = float((np.linalg.norm(pts, axis=-1) > 1).mean())
    assert outside > 0
    samples = write_samples(tmp_path / "s.npz", pts, dataset=dataset)
    out = tmp_path / "report"
    assert main(["--samples", str(samples), "--reference", str(dataset), "--out", str(out), "--n", "12", *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    row = report["rows"]["generated"]
    assert row["n"] == row["m"] == 12
    assert 0.5 * 95 * (2 / 12) < row["mmd_floor"] < 2 * 95 * (2 / 12)
    assert row["outside_ball"] == pytest.approx(outside)
    assert row["clouds_with_outside_points"] == pytest.approx(3 / 12)
    assert 0.5 < row["nn_ratio"] < 2
    assert all(0.5 < row[f"nn_ratio_k{k}"] < 2 for k in (1, 8, 32, 128))
    assert report["warnings"] == [] and not report["samples"]["conditioned_on_reference"]
    # provenance written by the sampler is carried into the report as written
    assert report["samples"]["solver"] == "euler" and report["samples"]["steps"] == 8
    md = (out / "report.md").read_text()
    assert f"{row['feature_mmd']:.2f} [{row['mmd_floor']:.2f}]" in md and "WARNING" not in md
    assert "solver euler" in md


@pytest.mark.parametrize("key", ["cond_split", "source_split"])
def test_samples_conditioned_on_the_scored_split_get_a_loud_warning(dataset, tmp_path, capsys, key):
    prov = {"solver": "euler", "steps": 8, "train_neurons": ["a", "b"], "manifest_hash": manifest_hash(dataset),
            "clip_ball": True, key: "test"}
    samples = save_samples(tmp_path / "s.npz", tubes(12, np.random.default_rng(4)) * 10.0, radius_um=10.0, provenance=prov)
    out = tmp_path / "report"
    assert main(["--samples", str(samples), "--reference", str(dataset), "--out", str(out), "--n", "12", *FAST]) == 0
    assert "WARNING" in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["samples"]["conditioned_on_reference"] and len(report["warnings"]) == 1
    md = (out / "report.md").read_text()
    assert "**WARNING" in md and "clipped to the ball" in md and "clip_ball True" in md
    # scored against another split, the same samples carry no warning
    other = tmp_path / "other"
    assert main(["--samples", str(samples), "--reference", str(dataset), "--split", "train", "--allow-overlap",
                 "--out", str(other), "--n", "12", *FAST]) == 0
    assert json.loads((other / "report.json").read_text())["warnings"] == []


def test_critic_column_ranks_the_blob_floor_far_above_real_train(tmp_path):
    data = tmp_path / "ds"
    tube_dataset(data, {"train": {"a": 40, "b": 40}, "test": {"c": 48}}, points=128, seed=5)
    out = tmp_path / "report"
    assert main(["--baselines", "--reference", str(data), "--out", str(out), "--n", "48", "--cd-points", "32",
                 "--emd-n", "0", "--morph-n", "0", "--mem-n", "0", "--critic-n", "48", "--critic-steps", "60",
                 "--critic-points", "64", "--threads", "1"]) == 0
    rows = json.loads((out / "report.json").read_text())["rows"]
    blob, real = rows["gaussian_blob"]["critic"], rows["real_train"]["critic"]
    assert blob["n_per_side"] == real["n_per_side"] == 48 and blob["n_test_per_side"] == 24
    # tubes against tubes of other neurons: chance; Gaussian blobs give themselves away
    assert blob["accuracy"] >= 0.9 and real["accuracy"] <= 0.75 and blob["accuracy"] - real["accuracy"] >= 0.25
    assert real["ci95"][0] < 0.5 < real["ci95"][1]
    md = (out / "report.md").read_text()
    assert "critic acc. (→50%)" in md and f"{100 * blob['accuracy']:.1f}% [" in md and "n=48" in md


def test_critic_options_are_checked_before_any_work(dataset, tmp_path, capsys):
    base = ["--baselines", "--reference", str(dataset), "--out", str(tmp_path / "o")]
    assert main(base + ["--critic-n", "2"]) == 2
    assert "--critic-n must be 0" in capsys.readouterr().err
    assert main(base + ["--critic-points", "8"]) == 2
    assert "--critic-points must exceed" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def logged_run(out: Path, keys: set[str]) -> tuple[dict, Path]:
    """What the offline wandb run in ``out`` logged, ``{key: value}`` with media values (flattened
    to ``key/field`` in the history) gathered back into dicts, once ``keys`` are there; and the
    run's folder."""
    for _ in range(60):  # wandb-core may still be flushing its log after finish()
        logged = {}
        for row in wandb_history(out):
            for k, v in row.items():
                head, _, field = k.rpartition("/")
                if head and (field.startswith("_") or field in ("path", "nrows", "ncols")):
                    logged.setdefault(head, {})[field] = v
        if keys <= set(logged):
            break
        time.sleep(0.5)
    (run_dir,) = out.glob("wandb/offline-run-*")
    return logged, run_dir


def test_wandb_offline_logs_the_tables_and_plots(dataset, tmp_path):
    out = tmp_path / "report"
    assert main(["--baselines", "--reference", str(dataset), "--out", str(out), "--n", "8", *FAST,
                 "--wandb", "offline"]) == 0
    plots = {f"plot/{name}" for name in ("features", "fragments", "morphometrics", "memorization")}
    logged, run_dir = logged_run(out, {"table/realism", "table/morphometrics"} | plots)
    assert logged["table/realism"]["_type"] == "table-file" and logged["table/realism"]["nrows"] == 4
    assert all(logged[key]["_type"] == "image-file" for key in plots)
    # the logged table is the report's: read it back from the run's files
    table = json.loads((run_dir / "files" / logged["table/realism"]["path"]).read_text())
    report = json.loads((out / "report.json").read_text())["rows"]
    by_set = {r[0]: dict(zip(table["columns"], r)) for r in table["data"]}
    assert by_set["Gaussian blob (floor)"]["feature_mmd"] == pytest.approx(report["gaussian_blob"]["feature_mmd"])
    assert by_set["real train fragments (ceiling)"]["n"] == 8
    # off (the default) writes no run
    assert main(["--baselines", "--reference", str(dataset), "--out", str(tmp_path / "plain"), "--n", "8", *FAST]) == 0
    assert not (tmp_path / "plain" / "wandb").exists()
# Values of this small report computed by the serial code before the evaluation was sped up
# (main at 4cadd3c): reuse of train features, vectorised edge resampling and worker processes
# must not change a digit.
PINNED = {
    "generated": (9.324285798432363, 0.6666666666666666, 0.1058865940819184, 0.28423205823482145, 0.25, 0.9425179454421231),
    "real_train": (2.359028530761975, 0.5833333333333334, 0.08521905060236652, 0.3648510408578179, 0.35, None),
    "memoriser": (51.10907434395462, 0.4166666666666667, 0.06265429810931285, 0.36968722398485515, 0.25, 0.006935853349406293),
    "gaussian_blob": (1511.0769293053397, 0.9583333333333334, 0.131718955313166, 0.34588382703369963, 1.0, 0.9980559645590389),
    "random_cylinder": (638.8158018925967, 0.625, 0.14829940674826503, 0.34554287252538424, 0.4, 0.22547166994749246),
}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_report_numbers_do_not_depend_on_workers_and_match_the_serial_code(tmp_path, workers):
    root = tmp_path / "ds"
    rng = np.random.default_rng(0)
    write_dataset(root, {"a": fragments(tubes(20, rng)), "b": fragments(tubes(20, rng)), "c": fragments(tubes(16, rng))},
                  {"train": ["a", "b"], "test": ["c"]}, radius_um=10.0)
    samples = write_samples(tmp_path / "s.npz", tubes(20, np.random.default_rng(1)), dataset=root)
    out = tmp_path / "r"
    assert main(["--samples", str(samples), "--reference", str(root), "--out", str(out), "--n", "12", "--baselines",
                 *FAST, "--workers", workers]) == 0
    rows = json.loads((out / "report.json").read_text())["rows"]
    for key, pinned in PINNED.items():
        r = rows[key]
        got = (r["feature_mmd"], r["cd"]["1-NNA"], r["cd"]["MMD"], r["emd"]["MMD"], r["morph_ks_mean"],
               r.get("memorization", {}).get("ratio_median"))
        assert got == pinned, key
