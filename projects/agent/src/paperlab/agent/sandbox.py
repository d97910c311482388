"""Run untrusted Python in a separate, limited process: the agent's code-interpreter tool.

Layers, from the strongest to the weakest (``isolation()`` says which ones this machine grants):
  1. a fresh network namespace (no interface but a down loopback) and PID namespace (one SIGKILL
     ends every process the code started) via ``unshare``, as root or through a user namespace;
  2. ``resource`` limits: address space, CPU seconds, file size, open files, no core dumps, and
     RLIMIT_NPROC; started as root, the child drops to ``nobody`` because RLIMIT_NPROC never binds root;
  3. a wall-clock timeout after which the whole process group (and namespace) is killed;
  4. an audit hook inside the child: no writes outside the temporary working directory, no sockets,
     no exec of other programs, no ctypes (a Python-level policy: it closes the easy doors, the
     kernel-level layers above are what hold against a determined escape);
  5. output truncation: stdout/stderr go to files bounded by RLIMIT_FSIZE, and only the first
     ``max_output_chars`` come back.
The code never runs in the agent's own process.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("sandbox_child.py")
NOBODY = 65534
PRELOAD = (
    "math",
    "cmath",
    "fractions",
    "decimal",
    "statistics",
    "json",
    "re",
    "itertools",
    "collections",
    "functools",
    "datetime",
    "random",
    "csv",
    "string",
    "heapq",
    "bisect",
    "textwrap",
    "operator",
    "copy",
    "pprint",
    "time",
    "calendar",
    "io",
    "traceback",
    "linecache",
    "socket",
    "subprocess",
    "encodings.idna",
)


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 5.0
    memory_mb: int = 512
    cpu_s: int = 5
    max_procs: int = 16
    max_file_mb: int = 8
    max_output_chars: int = 4000
    preload_numpy: bool = True


@dataclass
class SandboxResult:
    stdout: str
    stderr: str
    returncode: int | None
    timed_out: bool
    wall_s: float
    isolation: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def observation(self) -> str:
        """What the model sees: output, then the error (if any) in one readable block."""
        parts = []
        if self.stdout:
            parts.append(self.stdout.rstrip())
        if self.timed_out:
            parts.append(f"error: timed out after {self.wall_s:.1f} s (wall-clock limit)")
        elif self.returncode != 0:
            tail = self.stderr.strip().splitlines()[-1:] or [f"exit code {self.returncode}"]
            if self.returncode is not None and self.returncode < 0:
                tail = [f"killed by {signal.Signals(-self.returncode).name}"]
            parts.append("error: " + tail[0])
        return "\n".join(parts) if parts else "(no output)"


@functools.cache
def isolation() -> tuple[tuple[str, ...], str]:
    """The ``unshare`` prefix this machine allows and its name; ``()`` when no namespace can be made."""
    if shutil.which("unshare"):
        base = ("unshare", "--net", "--pid", "--fork", "--kill-child")
        for prefix, name in (
            (base, "netns+pidns"),
            (base[:1] + ("--user", "--map-root-user") + base[1:], "userns+netns+pidns"),
        ):
            try:
                if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                    return prefix, name
            except (OSError, subprocess.TimeoutExpired):
                pass
    return (), "no namespaces (sockets blocked by the audit hook only)"


def _read(path: Path, limit: int, tail: bool = False) -> str:
    """The first (or, for stderr, the last) ``limit`` characters of a file that may be large."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if tail:
            f.seek(max(0, size - 4 * limit - 4))
        data = f.read(4 * limit + 4)
    text = data.decode("utf-8", errors="replace")
    if len(text) <= limit and size <= len(data):
        return text
    if tail:
        return f"[... truncated to the last {limit} characters]\n" + text[-limit:]
    return text[:limit] + f"\n... [output truncated at {limit} characters]"


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh temporary directory under ``limits``; never raises for bad code."""
    limits = limits or SandboxLimits()
    prefix, iso_name = isolation()
    as_root = os.geteuid() == 0
    drop_uid = NOBODY if as_root and "--map-root-user" not in prefix else None
    cfg = {
        "memory_mb": limits.memory_mb,
        "cpu_s": limits.cpu_s,
        "max_file_mb": limits.max_file_mb,
        "max_procs": limits.max_procs,
        "drop_uid": drop_uid,
        "preload": list(PRELOAD) + (["numpy"] if limits.preload_numpy else []),
    }
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    with tempfile.TemporaryDirectory(prefix="paperlab-sandbox-") as base:
        work = Path(base) / "work"
        work.mkdir()
        (work / "main.py").write_text(code)
        env["HOME"] = str(work)
        if drop_uid is not None:
            for p in (work, work / "main.py"):
                os.chown(p, drop_uid, drop_uid)
        out_path, err_path = Path(base) / "stdout", Path(base) / "stderr"
        start = time.monotonic()
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [*prefix, sys.executable, "-I", "-B", str(CHILD), json.dumps(cfg)],
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:  # the process group: the child and whatever it forked (the namespace dies with it)
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        wall = time.monotonic() - start
        return SandboxResult(
            stdout=_read(out_path, limits.max_output_chars),
            stderr=_read(err_path, limits.max_output_chars, tail=True),
            returncode=None if timed_out else proc.returncode,
            timed_out=timed_out,
            wall_s=wall,
            isolation=iso_name,
        )
