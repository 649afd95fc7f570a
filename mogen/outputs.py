"""What every command does to the files it writes: lock them, write them atomically, remove only its own.

- :func:`hold_outputs` takes an exclusive ``fcntl.flock`` lock on each output (``--out``) for the
  run's duration, in a lock file beside it (``PARENT/.NAME.mogen-lock``), so it works before the
  folder exists and covers staging folders beside it (``mogen prepare``'s
  ``.NAME.prepare-partial-PID``). A second writer is refused at once (:class:`OutputBusy`) with
  the holder's pid, host, command and start time. The kernel drops the lock when its process
  dies, so a lock file left by a killed run is simply taken over (with a note).
  :func:`mogen.cli.run_command` takes the locks a command module names in ``outputs(args)``.
- :func:`atomic_path` and :func:`write_text` write to a temporary name in the same folder and
  rename it into place, so a full disk or a crash never leaves a half-written file that a later
  run would read; the temporary is removed on failure.
- :func:`remove_outputs` removes the files of a folder that match a command's own name patterns,
  nothing else (``--force`` replaces a command's outputs, never a user's file).
- :func:`write_failure` turns an ``OSError`` of writing (full disk, quota, permission, read-only)
  into one line naming the path, with the bytes needed and free for a full disk.

Examples
--------
>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> with hold_outputs({"--out": out}, command="doctest"):
...     _ = write_text(out / "report.json", "{}")
...     lock_file(out).is_file()
True
>>> sorted(p.name for p in out.parent.iterdir())  # the lock file goes with the run
['run']
>>> remove_outputs(out, [r"report\\.json"]) == [out / "report.json"]
True
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from mogen.errors import OutputError, UsageError

try:
    import fcntl
except ImportError:  # Windows: no flock; outputs are written unlocked
    fcntl = None

LOCK_SUFFIX = ".mogen-lock"
# OSErrors that mean "this cannot be written here" (as opposed to a bug): one line, exit status 1
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}
_HELD: dict[Path, int] = {}  # lock files this process holds -> nesting depth


# ---------------------------------------------------------------------------- errors of writing
def is_write_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError of the kinds a user fixes (full disk, quota, permission, read-only)."""
    return isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS


def size_text(n: float) -> str:
    """Bytes in words.

    >>> size_text(512), size_text(3.2e9)
    ('512 B', '3.2 GB')
    """
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def free_bytes(path) -> int | None:
    """Free bytes on the file system of ``path`` (or of its nearest existing folder); None if unknown."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def write_failure(exc: OSError, path=None, needed: int | None = None) -> OutputError:
    """One line for an OSError of writing ``path`` (the error's own file name wins when it has one).

    >>> str(write_failure(OSError(errno.EROFS, "Read-only file system"), "/mnt/x/samples.npz"))
    '/mnt/x/samples.npz: cannot write: read-only file system; choose an --out on a writable disk'
    """
    path = exc.filename or path or "output"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                errno.EFBIG: "file too large for this file system"}[exc.errno]
        free = free_bytes(path)
        room = ", ".join(([f"{size_text(needed)} needed"] if needed else [])
                         + ([f"{size_text(free)} free"] if free is not None else []))
        problem = f"cannot write: {what}{f' ({room})' if room else ''}; free some space or choose an --out on another disk"
    elif exc.errno == errno.EROFS:
        problem = "cannot write: read-only file system; choose an --out on a writable disk"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        if exc.filename and Path(exc.filename).is_file() and not os.access(exc.filename, os.R_OK):
            problem = "cannot read: permission denied"
        else:
            problem = "cannot write: permission denied; choose an --out you may write to"
    else:
        problem = f"cannot write: {exc.strerror or exc}"
    return OutputError(path, "", problem)


def check_space(path, needed: int) -> None:
    """Refuse before writing ``needed`` bytes at ``path`` when the file system has less free."""
    free = free_bytes(path)
    if free is not None and needed > free:
        raise write_failure(OSError(errno.ENOSPC, "No space left on device"), path, needed)


# ---------------------------------------------------------------------------- atomic writes
def _temporary(path: Path) -> Path:
    # same folder (rename stays on one file system), same suffix (np.savez, zarr and h5 go by it)
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_path(path, needed: int | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write a file (or a folder, e.g. a zarr store) into;
    renamed into place when the block ends without error, removed when it fails. The folder
    of ``path`` is made if missing.

    A folder replaces an existing one at ``path`` (the caller has checked it is its own output).
    An OSError of writing becomes an :class:`OutputError` naming ``path``; with ``needed`` bytes,
    a file system with less free space is refused before anything is written.

    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> with atomic_path(p) as tmp:
    ...     np.savez(tmp, x=np.zeros(3))
    >>> sorted(f.name for f in p.parent.iterdir())
    ['a.npz']
    """
    path = Path(path)
    if needed:
        check_space(path, needed)
    tmp = _temporary(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_write_error(exc):
            raise write_failure(exc, path.parent) from None
        raise
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir() and not path.is_symlink():
            old = path.with_name(f".{path.stem}.old-{os.getpid()}{path.suffix}")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        if is_write_error(exc):
            raise write_failure(exc, path, needed) from None
        raise
    except BaseException:
        _remove(tmp)
        raise


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def write_json(path, obj, **dumps) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically."""
    return write_text(path, json.dumps(obj, **{"indent": 1, **dumps}))


# ---------------------------------------------------------------------------- removing own outputs
def remove_outputs(folder, patterns) -> list[Path]:
    """Remove the files directly in ``folder`` whose names match one of ``patterns`` (regular
    expressions matched against the whole name); nothing else is touched. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    rx = re.compile("|".join(f"(?:{p})" for p in patterns))
    gone = []
    for f in sorted(folder.iterdir()):
        if rx.fullmatch(f.name) and (f.is_file() or f.is_symlink()):
            f.unlink()
            gone.append(f)
    return gone


def json_with(path, keys) -> bool:
    """Whether ``path`` is a JSON object holding all ``keys`` (how a command recognises its own record)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and all(k in record for k in keys)


def check_own(path, ours, command: str, flag: str = "--force") -> None:
    """Refuse to replace ``path`` when it exists but is not ``command``'s own output.

    ``ours`` is a predicate of the path (e.g. ``lambda p: json_with(p, ["clouds"])``).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "export.json"
    >>> _ = p.write_text("my notes")
    >>> check_own(p, lambda q: json_with(q, ["clouds"]), "mogen export")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    mogen.errors.UsageError: ... was not written by mogen export; --force replaces only its own outputs: move it away or choose another --out
    """
    path = Path(path)
    if path.exists() and not ours(path):
        raise UsageError(f"{path} exists but was not written by {command}; {flag} replaces only its own outputs: "
                         "move it away or choose another --out")


# ---------------------------------------------------------------------------- locks
class OutputBusy(UsageError):
    """Another run holds the lock on an output."""


def lock_file(out) -> Path:
    """The lock file of output ``out``: ``.NAME.mogen-lock`` beside it (the output itself may not exist yet).

    >>> lock_file("runs/samples").name
    '.samples.mogen-lock'
    """
    p = Path(os.path.abspath(out))
    if p == p.parent:
        raise UsageError(f"{out}: cannot write a run's outputs into the file system root; choose a folder")
    return p.parent / f".{p.name}{LOCK_SUFFIX}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _holder_text(info: dict) -> str:
    if not info.get("pid"):
        return "another mogen run (starting up)"
    return (f"pid {info['pid']} on {info.get('host', '?')}, started {info.get('started', '?')}: "
            f"{info.get('command', '?')}")


def _read_info(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 65536)
        info = json.loads(data.decode()) if data.strip() else {}
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _busy(flag: str, out, lock: Path, info: dict) -> OutputBusy:
    here = info.get("host") == socket.gethostname()
    pid = int(info.get("pid") or 0)
    if here and pid and not _alive(pid):
        how = (f"pid {pid} has ended, but a process it started still holds the lock; stop that process "
               f"(`fuser {lock}` names it) and retry")
    elif here or not pid:
        how = f"wait for it to finish, or choose another {flag}"
    else:
        how = f"wait for it to finish, or choose another {flag}; if that run is no longer alive, delete {lock} and retry"
    return OutputBusy(f"{flag} {out} is in use by another mogen run ({_holder_text(info)}); {how}")


class _Lock:
    """One held lock file (see :func:`hold_outputs`)."""

    def __init__(self, flag: str, out, command: str):
        self.flag, self.out, self.path = flag, out, lock_file(out)
        self.fd: int | None = None
        self.created: list[Path] = []
        self.owner = os.getpid()
        if self.path in _HELD:  # nested in this process (a command running another on the same output)
            _HELD[self.path] += 1
            self.nested = True
            return
        self.nested = False
        self._make_parents()
        try:
            self._acquire(command)
        except BaseException:
            self._remove_parents()
            raise
        _HELD[self.path] = 1

    def _make_parents(self) -> None:
        missing = []
        p = self.path.parent
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        try:
            for d in reversed(missing):
                d.mkdir()
                self.created.append(d)
        except OSError as exc:
            self._remove_parents()
            if is_write_error(exc):
                raise write_failure(exc, exc.filename or self.path.parent) from None
            raise UsageError(f"{self.flag} {self.out}: cannot create its folder ({exc.strerror or exc})") from None

    def _remove_parents(self) -> None:
        for d in reversed(self.created):  # the folders this run made, if it left them empty
            with contextlib.suppress(OSError):
                d.rmdir()

    def _acquire(self, command: str) -> None:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as exc:
                if is_write_error(exc):
                    raise write_failure(exc, self.path) from None
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read_info(fd)
                os.close(fd)
                raise _busy(self.flag, self.out, self.path, info) from None
            except OSError as exc:  # a file system without locks (some network mounts)
                os.close(fd)
                print(f"warning: cannot lock {self.path} ({exc.strerror or exc}); a second run writing to "
                      f"{self.flag} {self.out} at the same time would not be noticed", file=sys.stderr)
                return
            try:  # the holder before us may have removed the file between our open and our lock
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_info(fd)
        if previous.get("pid"):
            state = "no longer running" if previous.get("host") == socket.gethostname() and not _alive(int(previous["pid"])) \
                else "gone"
            print(f"note: took over the lock on {self.flag} {self.out} left by an earlier run ({_holder_text(previous)}; "
                  f"{state}): it ended without releasing it, so what it was writing there may be incomplete",
                  file=sys.stderr)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "out": str(self.out)}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:  # a full disk: the lock holds all the same; the holder is just not named
            pass
        self.fd = fd

    def release(self) -> None:
        if os.getpid() != self.owner:  # a forked child leaving a with-block does not release its parent's lock
            return
        if self.nested:
            _HELD[self.path] -= 1
            return
        _HELD.pop(self.path, None)
        if self.fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # while still locked: a run that opened it meanwhile sees it gone and retries
            os.close(self.fd)
            self.fd = None
        self._remove_parents()


@contextlib.contextmanager
def hold_outputs(outputs: dict, command: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on each output for the block's duration.

    ``outputs`` maps the flag that names an output (for messages, e.g. ``"--out"``) to its path,
    which need not exist yet (missing folders above it are made, and removed again if the run
    leaves them empty). A second holder is refused at once with :class:`OutputBusy`.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a"
    >>> with hold_outputs({"--out": out}, "first"):
    ...     with hold_outputs({"--out": out}, "second"):  # the same process: nested, allowed
    ...         pass
    """
    command = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    held: list[_Lock] = []
    try:
        if fcntl is not None:
            for flag, out in outputs.items():
                if out is not None:
                    held.append(_Lock(flag, Path(out), command))
        yield
    finally:
        for lock in reversed(held):
            lock.release()
