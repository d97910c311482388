"""A run directory: resolved config, TensorBoard events, ``metrics.jsonl`` and a console progress bar.

    runs/<name>/
        config.yaml        the resolved config of the run
        metrics.jsonl      one JSON object per logged step: {"step": ..., "<tag>": value, ...}
        events.out.tfevents.*   the same scalars for TensorBoard

On resume, rows logged after the step the run resumes from are dropped, so that the metrics file
reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from paperlab.shared.config import save_config


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; elsewhere what ``platform`` knows), for bench files."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_load() -> list[float]:
    """The 1, 5 and 15 minute load averages: write them next to any timing."""
    import os

    return [round(x, 2) for x in os.getloadavg()]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a ``metrics.jsonl`` file."""
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


class LineProgress:
    """tqdm's ``update``/``set_postfix``/``close``/``n`` as a plain line every ``every_s`` seconds."""

    def __init__(self, total: int, initial: int = 0, desc: str = "", every_s: float = 30.0):
        self.total, self.n, self.desc, self.every_s = total, initial, desc, every_s
        self._start_n, self._start = initial, time.time()
        self._last, self._postfix = self._start, ""

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.time() - self._last >= self.every_s:
            self._print()

    def set_postfix(self, **kw) -> None:
        self._postfix = " ".join(f"{k}={v}" for k, v in kw.items())

    def _print(self) -> None:
        self._last = now = time.time()
        rate = (self.n - self._start_n) / max(now - self._start, 1e-9)
        pct = 100.0 * self.n / self.total if self.total else 0.0
        print(
            f"{self.desc}: {self.n}/{self.total} ({pct:.0f}%) {rate:.3g}/s {self._postfix}".rstrip(),
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        self._print()


class RunLogger:
    """Writes scalars to TensorBoard and to ``metrics.jsonl`` in ``run_dir``.

    Args:
        run_dir: directory of the run (created).
        config: a config dataclass, saved as ``config.yaml``.
        resume_step: when resuming, rows with ``step > resume_step`` are dropped first.
        tensorboard: also write TensorBoard event files.
    """

    def __init__(
        self, run_dir: str | Path, config: Any = None, resume_step: int | None = None, tensorboard: bool = True
    ):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if config is not None:
            save_config(config, self.run_dir / "config.yaml")
        self.metrics_path = self.run_dir / "metrics.jsonl"
        elapsed = 0.0  # on resume, ``time`` continues from the last kept row (wall time of the whole run)
        if resume_step is not None and self.metrics_path.exists():
            kept = [r for r in read_metrics(self.metrics_path) if r.get("step", 0) <= resume_step]
            self.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
            elapsed = max((float(r.get("time") or 0.0) for r in kept), default=0.0)
        elif resume_step is None and self.metrics_path.exists():
            self.metrics_path.unlink()  # a fresh run in an old directory starts a fresh file
        self._file = open(self.metrics_path, "a", buffering=1)
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            if resume_step is None:  # a fresh run in an old directory: old curves would mix in
                for old in self.run_dir.glob("events.out.tfevents.*"):
                    old.unlink()
            # on resume, TensorBoard hides the old events logged after the checkpoint's step
            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(self.run_dir), flush_secs=30, purge_step=purge)
        self._start = time.time() - elapsed

    def log(self, step: int, **scalars: float) -> dict[str, Any]:
        """Log scalars at ``step``. Non-finite values are written as ``null`` in the JSONL."""
        row: dict[str, Any] = {"step": int(step), "time": round(time.time() - self._start, 3)}
        for key, value in scalars.items():
            v = float(value)
            row[key] = v if math.isfinite(v) else None
            if self._tb is not None:
                self._tb.add_scalar(key, v, int(step))
        self._file.write(json.dumps(row) + "\n")
        return row

    def progress(self, total: int, initial: int = 0, desc: str = "", every_s: float = 30.0):
        """A progress bar over ``total`` units; when stderr is not a terminal (piped, in a log file),
        a short line every ``every_s`` seconds instead."""
        if sys.stderr.isatty():
            return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, unit_scale=True, smoothing=0.05)
        return LineProgress(total, initial, desc, every_s)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
