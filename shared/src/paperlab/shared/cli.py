"""One behaviour for every project command: one-line errors, exit codes, Ctrl-C/SIGTERM, NaN.

    def main(argv=None):
        run_command(_main, argv)          # the module's entry point

    with StopSignal() as stop:            # in a training loop
        while step < total and not stop.requested:
            ...                           # a whole step, then the checkpoint, then the loop ends

Exit codes: 0 done; 2 bad usage, config, data or checkpoint (``ValueError``, ``FileNotFoundError``:
the message says what to do); 1 a failure at run time (``FloatingPointError`` for NaN/inf, anything
else); 130 stopped by Ctrl-C/SIGTERM after saving. ``PAPERLAB_TRACEBACK=1`` prints the traceback too.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

BAD_INPUT = (
    ValueError,
    LookupError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
_stopped = threading.Event()  # set by StopSignal when a run ended early on a signal


def check_finite(step: int, **values: float) -> None:
    """Raise ``FloatingPointError`` naming the step and every quantity that is NaN or inf."""
    bad = [f"{k}={float(v)}" for k, v in values.items() if not math.isfinite(float(v))]
    if bad:
        raise FloatingPointError(f"non-finite {', '.join(bad)} at step {step}")


class StopSignal:
    """Turn the first Ctrl-C (SIGINT) or SIGTERM into ``requested = True``; a second one interrupts at once.

    The loop checks ``requested`` between whole steps, saves, and returns; :func:`run_command` then
    exits with 130. Outside the main thread (signals cannot be caught there) it only holds the flag.
    """

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second signal: the user means it
            raise KeyboardInterrupt
        self.requested = True
        _stopped.set()
        print(f"\n{signal.Signals(signum).name}: finishing this step and saving (again to abort)", file=sys.stderr)

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def error_line(e: BaseException) -> str:
    """The first line of an exception's message (a ``KeyError`` prints its key, not a quoted repr)."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    text = text.strip()
    return text.splitlines()[0] if text else type(e).__name__


def run_command(fn: Callable[..., Any], argv: list[str] | None = None) -> Any:
    """Call ``fn(argv)`` and turn the ways it can end into one line on stderr and an exit code."""
    _stopped.clear()
    show_tb = os.environ.get("PAPERLAB_TRACEBACK", "") not in ("", "0")
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "paperlab"
    try:
        result = fn(argv)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except FloatingPointError as e:
        code, e_ = 1, e
    except BAD_INPUT as e:
        code, e_ = 2, e
    except Exception as e:  # a failure at run time: one line, the traceback on request
        code, e_ = 1, e
        if not show_tb:
            print(f"{prog}: {type(e).__name__} (PAPERLAB_TRACEBACK=1 shows where)", file=sys.stderr)
    else:
        if _stopped.is_set():
            print(f"{prog}: stopped early; the last checkpoint is saved (continue with --resume)", file=sys.stderr)
            raise SystemExit(130)
        return result
    if show_tb:
        traceback.print_exception(e_)
    print(f"error: {error_line(e_)}", file=sys.stderr)
    raise SystemExit(code) from None
