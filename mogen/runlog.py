"""Run logging: ``log.csv`` row by row, a wandb run (offline by default), the loss plot.

Below training and the evaluation commands, so any of them can log without importing another:
training logs rows as it goes (:class:`RunLog`); a report logs its tables and plots once
(:func:`log_report`, through the same class).
wandb runs offline unless asked (no account, no network): the run lands in
``OUT/wandb/offline-run-*`` and ``wandb sync OUT/wandb/offline-run-*`` uploads it later.
A wandb failure never stops the work: it is reported once and the CSV log goes on.

Examples
--------
>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> log = RunLog(out, config={"lr": 1e-3}, wandb_mode="off")
>>> log.log({"step": 1, "loss": 0.5}, step=1); log.log({"step": 2, "loss": 0.25}, step=2)
>>> log.close()
>>> (out / "log.csv").read_text().splitlines()
['step,loss', '1,0.5', '2,0.25']
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

from mogen.outputs import write_json as atomic_json

WANDB_MODES = ("offline", "online", "off")


class RunLog:
    """Rows to ``out_dir/log.csv`` (and ``log.json`` at the end), mirrored to wandb.

    ``rows`` (from a resumed run) are kept; a row with new keys widens the CSV.
    """

    def __init__(self, out_dir, config: dict | None = None, wandb_mode: str = "offline", project: str = "mogen",
                 rows: list[dict] | None = None, name: str | None = None, job_type: str = "train"):
        if wandb_mode not in WANDB_MODES:
            raise ValueError(f"wandb mode must be one of {WANDB_MODES}, got {wandb_mode!r}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / "log.csv"
        self.rows: list[dict] = list(rows or [])
        self.fields: list[str] = []
        for r in self.rows:
            self.fields += [k for k in r if k not in self.fields]
        self._rewrite()
        self.wandb = self._start_wandb(config or {}, wandb_mode, project, name, job_type) if wandb_mode != "off" else None

    def _start_wandb(self, config, mode, project, name, job_type):
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb

            return wandb.init(project=project, dir=str(self.out_dir), mode=mode, config=config, name=name,
                              job_type=job_type, reinit="finish_previous")
        except Exception as exc:  # logging must never stop the work
            print(f"wandb could not start ({type(exc).__name__}: {exc}); logging to {self.path} only", file=sys.stderr)
            return None

    @property
    def wandb_dir(self) -> str | None:
        """Folder of the wandb run (``wandb sync`` it to upload an offline run)."""
        return getattr(self.wandb, "dir", None) and str(Path(self.wandb.dir).parent)

    def _rewrite(self) -> None:
        if not self.rows:
            return
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            w.writeheader()
            w.writerows(self.rows)

    def log(self, row: dict, step: int) -> None:
        """Append one row (written at once, so a running or crashed job can be inspected)."""
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        if new or len(self.rows) == 1:
            self.fields += new
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields).writerow(row)
        self._wandb_call("log", {k: v for k, v in row.items() if k != "step"}, step=step)

    def image(self, key: str, path, step: int, caption: str = "") -> None:
        """Log a PNG written elsewhere (e.g. a preview grid) to wandb."""
        if self.wandb is not None:
            import wandb

            self._wandb_call("log", {key: wandb.Image(str(path), caption=caption)}, step=step)

    def table(self, key: str, columns: list[str], rows: list[list], step: int = 0) -> None:
        """Log a table (one list per row, in ``columns`` order) to wandb as a ``wandb.Table``."""
        if self.wandb is not None:
            import wandb

            self._wandb_call("log", {key: wandb.Table(columns=list(columns), data=[list(r) for r in rows])}, step=step)

    def summary(self, values: dict, write_json: bool = True) -> None:
        """Final numbers of the run (wandb summary; also ``summary.json`` unless ``write_json`` is False)."""
        if write_json:
            path = self.out_dir / "summary.json"
            old = json.loads(path.read_text()) if path.is_file() else {}
            atomic_json(path, {**old, **values}, default=float)  # read back by the next summary: never half-written
        if self.wandb is not None:
            try:
                self.wandb.summary.update(values)
            except Exception as exc:  # pragma: no cover - wandb internals
                print(f"wandb summary failed ({exc})", file=sys.stderr)

    def _wandb_call(self, name: str, *args, **kwargs) -> None:
        if self.wandb is None:
            return
        try:
            getattr(self.wandb, name)(*args, **kwargs)
        except Exception as exc:  # pragma: no cover - wandb internals
            print(f"wandb {name} failed ({type(exc).__name__}: {exc}); logging to {self.path} only", file=sys.stderr)
            self.wandb = None

    def close(self, plot: bool = True) -> None:
        """``log.json`` and ``loss.png`` next to ``log.csv``; finish the wandb run."""
        if self.rows:
            (self.out_dir / "log.json").write_text(json.dumps(self.rows))
            if plot and any("loss" in r for r in self.rows):
                plot_loss(self.path, self.out_dir / "loss.png")
        if self.wandb is not None:
            try:
                self.wandb.finish()
            except Exception as exc:  # pragma: no cover
                print(f"wandb finish failed ({exc})", file=sys.stderr)
            self.wandb = None


def log_report(out_dir, tables: dict, images: dict, wandb_mode: str = "offline", config: dict | None = None,
               summary: dict | None = None, job_type: str = "evaluate", name: str | None = None) -> str | None:
    """Log a finished report to a wandb run in ``out_dir/wandb``: its tables and plots, once, at step 0.

    ``tables`` maps a key to ``(columns, rows)``, logged as ``table/KEY``; ``images`` maps a key
    to a PNG path, logged as ``plot/KEY`` (missing
    files are skipped: a report writes some plots only when it has their data); ``summary`` goes
    to the run's summary (the report's own files hold every number). Returns the run's folder (``wandb sync``
    it), or None when wandb is off or could not start.

    >>> import tempfile
    >>> log_report(tempfile.mkdtemp(), {"rows": (["set", "score"], [["a", 1.0]])}, {}, wandb_mode="off") is None
    True
    """
    if wandb_mode == "off":
        return None
    log = RunLog(out_dir, config=config, wandb_mode=wandb_mode, name=name, job_type=job_type)
    for key, (columns, rows) in tables.items():  # prefixes keep a table and a plot of one name apart
        log.table(f"table/{key}", columns, rows, step=0)
    for key, path in images.items():
        if Path(path).is_file():
            log.image(f"plot/{key}", path, step=0, caption=Path(path).name)
    if summary:
        log.summary(summary, write_json=False)
    where = log.wandb_dir
    log.close(plot=False)
    return where


def plot_loss(log_csv, path) -> None:
    """Plot the loss column of a ``log.csv`` (with a running mean, and validation losses if
    logged) against minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(log_csv) as f:
        rows = [r for r in csv.DictReader(f) if r.get("loss")]
    if not rows:
        return
    minutes = np.array([float(r["seconds"]) for r in rows]) / 60 if "seconds" in rows[0] else np.arange(len(rows))
    loss = np.array([float(r["loss"]) for r in rows])
    window = max(1, len(loss) // 20)
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(minutes, loss, lw=0.5, alpha=0.5, label="train loss")
    ax.plot(minutes[window - 1:], smooth, lw=1.5, label=f"running mean ({window})")
    for key, style in (("val_loss_ema", "o-"), ("val_loss_raw", "s--")):
        pts = [(m, float(r[key])) for m, r in zip(minutes, rows) if r.get(key)]
        if pts:
            ax.plot(*zip(*pts), style, ms=3, lw=1, label=key.replace("_", " "))
    ax.set_xlabel("minutes")
    ax.set_ylabel("flow-matching MSE")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(f"{Path(log_csv).parent.name}: {rows[-1].get('step', len(rows))} steps")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
