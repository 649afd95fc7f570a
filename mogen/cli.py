"""The ``mogen`` command line: one sub-command per pipeline stage.

Each sub-command lives in its own module, which provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when
their command runs, so ``mogen --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module implementing it
COMMANDS = {
    "prepare": "mogen.data.prepare",
    "train": "mogen.training",
    "sample": "mogen.sampling",
    "evaluate": "eval.generation",
    "augment": "mogen.augment.cli",
}

_HELP = {
    "prepare": "turn SWC skeletons / neuron meshes into a fragment dataset (default: navis example neurons)",
    "train": "train the flow-matching generator (same as train.py)",
    "sample": "sample fragments from a checkpoint into samples.npz + PLY + PNG (same as sample.py)",
    "evaluate": "score samples.npz against held-out neurons, with baselines (same as python -m eval.generation)",
    "augment": "render neurons into segmentation training data (raw + labels) and merge/split examples",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mogen",
        description="mogen: generate realistic neuron morphology fragments and use them for connectomics.",
    )
    from mogen import __version__

    parser.add_argument("--version", action="version", version=f"mogen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in _HELP.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name])
    sub = argparse.ArgumentParser(
        prog=f"mogen {name}",
        description=getattr(module, "DESCRIPTION", _HELP[name]),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
