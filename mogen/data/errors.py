"""One error type for bad input, so callers can tell "this file is wrong" from a bug."""

from __future__ import annotations


class DataError(ValueError):
    """A neuron file that cannot be turned into fragments.

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
