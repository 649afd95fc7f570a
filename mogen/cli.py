"""The ``mogen`` command line: one sub-command per pipeline stage.

Each sub-command lives in its own module, which provides ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when
their command runs, so ``mogen --help`` stays fast. :func:`run_command` is the one place
that turns a user's mistake (:class:`mogen.errors.MogenError`) into a one-line message and
an exit status; ``train.py``, ``sample.py`` and the ``python -m`` entry points use it too.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module implementing it, one-line help)
COMMANDS = {
    "prepare": ("mogen.data.prepare", "turn SWC skeletons / neuron meshes into a fragment dataset (default: navis example neurons)"),
    "train": ("mogen.training", "train the flow-matching generator (same as train.py)"),
    "sample": ("mogen.sampling", "sample fragments from a checkpoint or a bundled generator (same as sample.py)"),
    "export": ("mogen.export", "generated clouds (samples.npz) -> SWC skeletons, watertight meshes, previews"),
    "grow": ("mogen.grow", "grow a whole neurite by outpainting crops; writes its cloud, SWC, mesh and preview"),
    "evaluate": ("mogen.evaluate.generation", "score samples.npz against held-out neurons, with baselines"),
    "augment": ("mogen.augment.cli", "render neurons into segmentation training data (raw + labels) and merge/split examples"),
    "benchmark": ("mogen.evaluate.augment", "reconstruction benchmark: do synthetic neurons cut errors per mm?"),
}

EXIT_USAGE, EXIT_DATA, EXIT_INTERRUPTED = 2, 1, 130


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def make_parser(prog: str, module) -> argparse.ArgumentParser:
    """The argument parser of one command module."""
    parser = argparse.ArgumentParser(prog=prog, description=getattr(module, "DESCRIPTION", None), formatter_class=_Formatter)
    module.add_arguments(parser)
    return parser


def run_command(prog: str, module, argv: list[str] | None = None) -> int:
    """Parse ``argv`` for ``module`` and run it; a :class:`MogenError` becomes one line on stderr.

    The outputs the module names in ``outputs(args)`` (``{flag: path}``) are locked for the run
    (:func:`mogen.outputs.hold_outputs`: a second writer is refused at once), and an OSError of
    writing (full disk, permission, read-only) becomes one line naming the path.

    Exit status: 0 done, 1 bad input data or an output that cannot be written, 2 bad arguments
    (or an output in use), 130 interrupted.
    """
    import shlex

    from mogen.errors import DataError, MogenError
    from mogen.outputs import hold_outputs, is_write_error, write_failure

    argv = list(sys.argv[1:] if argv is None else argv)
    args = make_parser(prog, module).parse_args(argv)
    outputs = {}
    try:
        outputs = module.outputs(args) if hasattr(module, "outputs") else {}
        with hold_outputs(outputs, command=" ".join([prog, shlex.join(argv)])):
            return int(module.run(args) or 0)
    except MogenError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_DATA if isinstance(exc, DataError) else EXIT_USAGE
    except OSError as exc:
        if not is_write_error(exc):
            raise
        where = next((path for path in outputs.values() if path is not None), None)  # errors without a file name
        print(f"{prog}: error: {write_failure(exc, where)}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    from mogen import __version__

    parser = argparse.ArgumentParser(
        prog="mogen",
        description="mogen: generate realistic neuron morphology fragments and use them for connectomics.",
    )
    parser.add_argument("--version", action="version", version=f"mogen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        build_parser().parse_args(argv or ["--help"])
        return EXIT_USAGE
    name, rest = argv[0], argv[1:]
    return run_command(f"mogen {name}", importlib.import_module(COMMANDS[name][0]), rest)


if __name__ == "__main__":
    sys.exit(main())
