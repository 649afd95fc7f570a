"""Outputs under attack: a second writer, foreign files in --out, a full disk, no permission.

Every class ends in one line (no traceback), an exit status, and no data lost: the lock on
--out (mogen.outputs.hold_outputs, taken by mogen.cli.run_command), --force/--overwrite that
remove only a command's own files, and writes that never leave a half-written file behind.
A full disk and a read-only folder are simulated by patching the writer (tests run as root,
so chmod would not stop them).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mogen.cli import main, run_command
from mogen.errors import OutputError, UsageError
from mogen.outputs import atomic_path, hold_outputs, lock_file, remove_outputs, write_failure

ROOT = Path(__file__).resolve().parents[1]
SWC = Path(__file__).parent / "data" / "swc" / "quirky.swc"
PREPARE = ["--points", "16", "--radius-um", "5", "--no-preview", "--val", "0", "--test", "0", "--workers", "1"]


def _one_line(err: str, *needles: str) -> None:
    """No traceback, and one error line (progress bars and warnings of work done before may precede it)."""
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert "Traceback" not in err and len(errors) == 1, err
    for n in needles:
        assert n in errors[0], (n, err)


def _holder(out: Path, then: str = "time.sleep(60)") -> subprocess.Popen:
    """Another process that takes the lock on ``out`` (then does ``then``); returns once it holds it."""
    ready = out.parent / f"{out.name}.ready"
    code = textwrap.dedent(f"""
        import os, pathlib, signal, sys, time
        from mogen.outputs import hold_outputs
        with hold_outputs({{"--out": pathlib.Path({str(out)!r})}}, command="mogen prepare x --out {out.name}"):
            pathlib.Path({str(ready)!r}).write_text("1")
            {then}
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for _ in range(200):
        if ready.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert ready.exists(), "the holder never took the lock"
    return proc


# ---------------------------------------------------------------------------- locks
def test_second_writer_is_refused_at_once_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "ds"
    holder = _holder(out)
    try:
        t0 = time.perf_counter()
        assert main(["prepare", str(SWC), "--out", str(out), *PREPARE]) == 2
        assert time.perf_counter() - t0 < 5  # refused before any work
        err = capsys.readouterr().err
        _one_line(err, f"--out {out} is in use by another mogen run", f"pid {holder.pid} on {socket.gethostname()}",
                  "mogen prepare x --out ds", "started 20", "wait for it to finish, or choose another --out")
        assert not out.exists() and not list(tmp_path.glob(".ds.prepare-partial-*"))
        # sample.py is refused the same way, before a checkpoint is even read
        from mogen import sampling

        assert run_command("sample.py", sampling, ["--ckpt", str(tmp_path / "none"), "--out", str(out)]) == 2
        _one_line(capsys.readouterr().err, "is in use by another mogen run")
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed: its lock file is left behind): the next run takes the lock over and says so
    assert lock_file(out).is_file()
    assert main(["prepare", str(SWC), "--out", str(out), *PREPARE]) == 0
    err = capsys.readouterr().err
    assert f"note: took over the lock on --out {out} left by an earlier run (pid {holder.pid}" in err
    assert "no longer running" in err
    assert not lock_file(out).exists()  # released with the run


def test_a_lock_file_of_a_dead_pid_is_taken_over(tmp_path, capsys):
    out = tmp_path / "runs" / "s"
    out.parent.mkdir()
    lock_file(out).write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname(), "command": "sample.py --out s",
                                          "started": "2026-01-01 00:00:00 UTC"}))
    with hold_outputs({"--out": out}, "test"):
        info = json.loads(lock_file(out).read_text())
        assert info["pid"] == os.getpid() and info["command"] == "test"
    assert "took over the lock on --out" in capsys.readouterr().err and not lock_file(out).exists()


def test_a_dead_holder_whose_child_keeps_the_lock_is_named(tmp_path, capsys):
    out = tmp_path / "ds"
    # the holder forks a child (which inherits the lock) and dies without releasing it
    child_file = tmp_path / "child.pid"
    holder = _holder(out, then="\n            ".join([
        "pid = os.fork()",
        "time.sleep(60) if pid == 0 else None",
        f"pathlib.Path({str(child_file)!r}).write_text(str(pid))",
        "os.kill(os.getpid(), signal.SIGKILL)"]))
    holder.wait()
    child = [int(child_file.read_text())]
    try:
        with pytest.raises(UsageError) as e:
            with hold_outputs({"--out": out}, "test"):
                pass
        assert f"pid {holder.pid} has ended, but a process it started still holds the lock" in str(e.value)
        assert f"fuser {lock_file(out)}" in str(e.value)
    finally:
        for pid in child:
            os.kill(pid, signal.SIGKILL)


def test_folders_made_for_a_refused_run_are_removed_again(tmp_path, capsys):
    out = tmp_path / "new" / "deep" / "ds"
    assert main(["prepare", str(SWC), "--out", str(out), "--points", "-5"]) == 2
    assert not (tmp_path / "new").exists()
    with pytest.raises(UsageError, match="file system root"):
        lock_file("/")


def test_every_writing_command_names_its_outputs():
    """run_command locks what ``outputs(args)`` names: every command that writes must have it."""
    import importlib

    from mogen.cli import COMMANDS

    for module in [m for m, _ in COMMANDS.values()] + ["mogen.evaluate.whole", "mogen.evaluate.control"]:
        assert hasattr(importlib.import_module(module), "outputs"), module


# ---------------------------------------------------------------------------- foreign files
def test_overwrite_never_deletes_a_foreign_file(tmp_path, capsys):
    from mogen.augment import cli
    from mogen.augment.io import read_volume
    from mogen.samples import write_samples
    from mogen.augment.random_walk import random_walk_fragments

    write_samples(tmp_path / "s.npz", random_walk_fragments(4, n_points=256, radius_um=10.0, seed=0) * 10.0, 10.0, {})
    small = ["--source", str(tmp_path / "s.npz"), "--extent", "3", "--voxel-size", "150", "150", "150", "--objects", "4"]
    run = lambda *a: run_command("mogen augment", cli, list(a))
    user = tmp_path / "user.zarr"  # a user's folder that happens to end in .zarr
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    assert run("render", *small, "--out", str(user), "--overwrite") == 2
    _one_line(capsys.readouterr().err, f"{user} is not a volume written by mogen (it holds notes.txt",
              "--overwrite replaces only mogen's own volumes")
    assert (user / "notes.txt").read_text() == "mine"
    (tmp_path / "user.h5").write_text("mine")
    assert run("render", *small, "--out", str(tmp_path / "user.h5"), "--overwrite") == 2
    _one_line(capsys.readouterr().err, "not an HDF5 file")
    # a volume of ours is replaced (in one rename), but not once a foreign file sits inside it
    vol = tmp_path / "v.zarr"
    assert run("render", *small, "--out", str(vol)) == 0
    (vol / "labels" / "extra.txt").write_text("mine")
    capsys.readouterr()
    assert run("render", *small, "--out", str(vol), "--overwrite") == 2
    assert "it holds labels/extra.txt" in capsys.readouterr().err
    (vol / "labels" / "extra.txt").unlink()
    assert run("render", *small, "--out", str(vol), "--overwrite") == 0
    assert read_volume(vol)["labels"].ndim == 3 and not list(tmp_path.glob(".v.*"))
    (tmp_path / "e.npz").write_text("mine")
    capsys.readouterr()
    assert run("examples", "--volume", str(vol), "--out", str(tmp_path / "e.npz"), "--overwrite") == 2
    _one_line(capsys.readouterr().err, "is not an examples file written by `mogen augment examples`")
    assert (tmp_path / "e.npz").read_text() == "mine"


def test_prepare_force_refuses_a_foreign_file_in_a_split_folder_and_clears_its_own_leftovers(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["prepare", str(SWC), "--out", str(out), *PREPARE]) == 0
    capsys.readouterr()
    (out / "train" / "notes.txt").write_text("mine")
    (out / "README.txt").write_text("mine")  # beside the dataset: never touched
    assert main(["prepare", str(SWC), "--out", str(out), *PREPARE, "--force"]) == 2
    _one_line(capsys.readouterr().err, f"--out {out} holds {out / 'train' / 'notes.txt'}, which `mogen prepare` did not write")
    (out / "train" / "notes.txt").unlink()
    stale = tmp_path / ".ds.prepare-partial-999999"  # an interrupted run's working folder (before its swap)
    (stale / ".chunks").mkdir(parents=True)
    (stale / "INCOMPLETE.txt").write_text("")
    odd = tmp_path / ".ds.prepare-partial-999998"  # one that may hold a dataset: named, kept
    odd.mkdir()
    (odd / ".old").mkdir()
    assert main(["prepare", str(SWC), "--out", str(out), *PREPARE, "--force"]) == 0
    err = capsys.readouterr().err
    assert f"note: removed {stale}" in err and f"note: {odd} is left over" in err
    assert not stale.exists() and odd.exists() and (out / "README.txt").read_text() == "mine"


def test_force_removes_only_names_the_command_writes(tmp_path, capsys):
    from mogen import export, sampling

    for name in ("cloud_0001.png", "cloud_12345.swc", "cloud_photo.png", "export.json.bak", "samples.npz.mine"):
        (tmp_path / name).write_text("x")
    gone = remove_outputs(tmp_path, export.OUTPUTS)
    assert sorted(p.name for p in gone) == ["cloud_0001.png", "cloud_12345.swc"]
    assert remove_outputs(tmp_path, sampling.OUTPUTS) == []
    # a record of the same name that the command did not write is refused, even with --force
    (tmp_path / "export.json").write_text("my notes")
    assert run_command("mogen export", export, ["--samples", "x.npz", "--out", str(tmp_path), "--force"]) == 2
    _one_line(capsys.readouterr().err, "export.json exists but was not written by mogen export")
    (tmp_path / "samples.npz").write_text("mine")
    assert run_command("sample.py", sampling, ["--pretrained", "navis-em", "--out", str(tmp_path), "--force"]) == 2
    _one_line(capsys.readouterr().err, "samples.npz exists but was not written by sample.py / mogen sample")
    assert (tmp_path / "samples.npz").read_text() == "mine"


# ---------------------------------------------------------------------------- full disk, no permission
def _full(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_in_prepare_is_one_line_and_keeps_the_old_dataset(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ds"
    assert main(["prepare", str(SWC), "--out", str(out), *PREPARE]) == 0
    old = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    monkeypatch.setattr(np, "savez", _full)
    assert main(["prepare", str(SWC), "--out", str(out), *PREPARE, "--force"]) == 1
    _one_line(capsys.readouterr().err, f"{out}: cannot write: no space left on device (", "needed", "free)",
              f"nothing written; {out} is unchanged")
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no working folder, no lock, no temporary
    # a file system with less room than the split's points is refused before they are written
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    assert main(["prepare", str(SWC), "--out", str(out), *PREPARE, "--force"]) == 1
    _one_line(capsys.readouterr().err, "no space left on device", "needed, 100 B free")


def test_failed_writes_leave_nothing_half_written(tmp_path, monkeypatch):
    from mogen.samples import read_samples, write_samples

    pts = np.random.default_rng(0).normal(size=(2, 8, 3)).astype(np.float32)
    path = write_samples(tmp_path / "samples.npz", pts, 10.0, {"checkpoint": "first"})
    real = np.savez

    def half(file, **arrays):  # writes part of a file, then the disk is full
        Path(file).write_bytes(b"PK\x03\x04 half")
        _full()

    monkeypatch.setattr(np, "savez", half)
    with pytest.raises(OutputError, match="samples.npz: cannot write: no space left on device"):
        write_samples(path, pts * 2, 10.0, {"checkpoint": "second"})
    monkeypatch.setattr(np, "savez", real)
    assert read_samples(path).provenance["checkpoint"] == "first" and sorted(tmp_path.iterdir()) == [path]
    # folders too (a zarr store): the half-written temporary goes, the old one stays
    (tmp_path / "v").mkdir()
    with pytest.raises(OutputError, match="read-only file system"):
        with atomic_path(tmp_path / "v") as tmp:
            tmp.mkdir()
            raise OSError(errno.EROFS, "Read-only file system")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.npz", "v"]


@pytest.mark.parametrize("code, words", [(errno.EACCES, "permission denied; choose an --out you may write to"),
                                         (errno.EROFS, "read-only file system"), (errno.EDQUOT, "disk quota exceeded")])
def test_any_write_error_of_a_command_is_one_line(tmp_path, capsys, code, words):
    """An OSError of writing anywhere in a command (here without a file name, as zipfile raises
    it) ends in one line naming the command's --out, exit status 1."""

    class Command:
        DESCRIPTION = "writes"

        @staticmethod
        def add_arguments(p):
            p.add_argument("--out")

        @staticmethod
        def outputs(args):
            return {"--out": Path(args.out)}

        @staticmethod
        def run(args):
            raise OSError(code, os.strerror(code))

    assert run_command("mogen x", Command, ["--out", str(tmp_path / "o")]) == 1
    _one_line(capsys.readouterr().err, f"mogen x: error: {tmp_path / 'o'}: cannot write: {words}")
    assert not lock_file(tmp_path / "o").exists()


def test_write_failure_names_the_file_of_the_error_and_the_room():
    e = write_failure(OSError(errno.ENOSPC, "No space left on device", "/tmp/x/ckpt.pt"), needed=3_000_000)
    assert str(e).startswith("/tmp/x/ckpt.pt: cannot write: no space left on device (3.0 MB needed, ")
    assert "free)" in str(e)
