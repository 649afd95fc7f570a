"""Helpers shared by the benchmark scripts: best-of-N timing and recording into BENCHMARKS.md."""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best_time(fn, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def record(text: str, section: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Append ``text`` at the end of ``section`` (a '## ' heading) of BENCHMARKS.md."""
    doc = path.read_text()
    start = doc.index(section)
    nxt = doc.find("\n## ", start + len(section))
    nxt = len(doc) if nxt < 0 else nxt + 1
    body = doc[start:nxt].rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(doc[:start] + body + doc[nxt:])


def check_at_least(parser, args, least: dict[str, int]) -> None:
    """``parser.error`` (one line, before any work) for the first ``args.NAME < least[NAME]``."""
    for name, low in least.items():
        value = getattr(args, name)
        if value < low:
            parser.error(f"--{name.replace('_', '-')} must be at least {low}, got {value}")


def run(main) -> int:
    """Run a benchmark's ``main``; a mogen error (bad argument, file or dataset) ends in one
    line naming the script, not a traceback, as in the mogen commands."""
    import sys

    from mogen.errors import MogenError

    try:
        return main() or 0
    except MogenError as e:
        print(f"bench/{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        return 2
