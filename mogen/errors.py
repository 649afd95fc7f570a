"""The project's own error types: what a user did wrong, as opposed to a bug.

Every command catches :class:`MogenError` at the top (:func:`mogen.cli.guarded`) and prints
its message as one line, without a traceback. Anything else that escapes is a bug.

- :class:`UsageError`: a command-line argument or config value that is out of range,
  missing or inconsistent, caught before any work starts.
- :class:`DataError`: an input file (or neuron) that cannot be used; names the file, where
  in it, and what is wrong. Its subclasses name the format; :class:`OutputError` is an
  output that cannot be written (full disk, permission), made by :mod:`mogen.outputs`.
"""

from __future__ import annotations


class MogenError(Exception):
    """Base class of every error a user can cause and fix."""


class UsageError(MogenError, ValueError):
    """A bad argument or config value (one line: what is wrong and what is allowed)."""


class DataError(MogenError, ValueError):
    """A file that cannot be used.

    Parameters
    ----------
    file : str
        The file (or neuron name) at fault.
    where : str
        Where in it: ``"line 12"``, ``"vertex 40"``, ``"face 7"``, ``"neuron"``...
    problem : str
        What is wrong, in words a user can act on.

    Examples
    --------
    >>> str(DataError("a.swc", "line 3", "non-numeric x 'abc'"))
    "a.swc: line 3: non-numeric x 'abc'"
    """

    def __init__(self, file, where: str, problem: str):
        self.file, self.where, self.problem = str(file), where, problem
        super().__init__(f"{self.file}: {where}: {problem}" if where else f"{self.file}: {problem}")

    def __reduce__(self):  # keep picklable across worker processes
        return (type(self), (self.file, self.where, self.problem))


class SWCError(DataError):
    """A malformed SWC file (names the line and the problem)."""


class MeshError(DataError):
    """An unreadable, empty or degenerate mesh (names the element and the problem)."""


class DatasetError(DataError):
    """A fragment dataset directory that is missing, incomplete or inconsistent."""


class CheckpointError(DataError):
    """A checkpoint that is missing, truncated, corrupt or from an incompatible version."""


class SamplesError(DataError):
    """A samples.npz that is missing, truncated or malformed."""


class VolumeError(DataError):
    """A zarr/HDF5 volume that cannot be written or read."""


class OutputError(DataError):
    """An output that cannot be written: full disk, quota, no permission, read-only file system."""
