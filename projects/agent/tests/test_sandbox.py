"""The sandbox stops what it must: loops, fork bombs, memory hogs, writes outside, sockets; small limits."""

import os
import time

import pytest

from paperlab.agent.sandbox import SandboxLimits, isolation, run_python

FAST = SandboxLimits(timeout_s=3.0, memory_mb=256, cpu_s=3, max_procs=8, max_output_chars=2000, preload_numpy=False)


def test_happy_path_runs_in_another_process():
    r = run_python("import os\nprint(os.getpid(), sum(range(10)))", FAST)
    assert r.ok, r.stderr
    pid, total = r.stdout.split()
    assert total == "45" and int(pid) != os.getpid()


def test_infinite_loop_is_stopped_by_the_wall_clock():
    start = time.monotonic()
    r = run_python("while True:\n    pass", SandboxLimits(timeout_s=1.0, cpu_s=30, preload_numpy=False))
    assert r.timed_out and not r.ok
    assert time.monotonic() - start < 5
    assert "timed out" in r.observation()


def test_cpu_limit_kills_a_busy_loop_before_the_wall_clock():
    r = run_python("while True:\n    pass", SandboxLimits(timeout_s=20.0, cpu_s=1, preload_numpy=False))
    assert not r.timed_out and r.returncode != 0 and r.wall_s < 10  # SIGXCPU/SIGKILL from RLIMIT_CPU


def _user_processes(uid: int) -> int:
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            n += os.stat(f"/proc/{pid}").st_uid == uid
        except FileNotFoundError:
            pass
    return n


def test_fork_bomb_is_contained_and_cleaned_up():
    code = (
        "import os, time\nrefused = 0\nfor _ in range(200):\n    try:\n        if os.fork() == 0:\n"
        "            time.sleep(30)\n            os._exit(0)\n    except OSError:\n        refused += 1\n"
        "print('refused', refused, flush=True)\ntime.sleep(30)\n"
    )
    uid = 65534 if os.geteuid() == 0 else os.getuid()
    before = _user_processes(uid)
    r = run_python(code, SandboxLimits(timeout_s=3.0, memory_mb=256, max_procs=8, preload_numpy=False))
    refused = int(r.stdout.split()[1])
    assert refused >= 150  # RLIMIT_NPROC allowed at most max_procs more processes
    assert r.timed_out
    for _ in range(50):  # every forked child is gone once the sandbox returns (killpg / PID namespace)
        if _user_processes(uid) <= before:
            break
        time.sleep(0.1)
    assert _user_processes(uid) <= before


def test_memory_hog_gets_memory_error():
    r = run_python("x = bytearray(1024 * 1024 * 1024)\nprint('allocated')", FAST)
    assert not r.ok and "allocated" not in r.stdout
    assert "MemoryError" in r.stderr


def test_write_outside_the_working_directory_is_refused(tmp_path):
    target = tmp_path / "escape.txt"
    code = f"open({str(target)!r}, 'w').write('x')\n"
    r = run_python(code + "print('wrote')", FAST)
    assert not r.ok and "wrote" not in r.stdout and not target.exists()
    assert "PermissionError" in r.stderr
    r = run_python("import os\nos.rename('main.py', '/tmp/paperlab-moved.py')", FAST)
    assert not r.ok and not os.path.exists("/tmp/paperlab-moved.py")
    ok = run_python("open('inside.txt', 'w').write('x')\nprint(open('inside.txt').read())", FAST)
    assert ok.ok and ok.stdout.strip() == "x"


def test_socket_connect_fails():
    code = (
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\ns.settimeout(2)\n"
        "s.connect(('127.0.0.1', 9))\nprint('connected')"
    )
    r = run_python(code, FAST)
    assert not r.ok and "connected" not in r.stdout


@pytest.mark.skipif("netns" not in isolation()[1], reason="no network namespace on this machine")
def test_network_namespace_has_no_interface_but_loopback():
    r = run_python("print(open('/proc/net/dev').read())", FAST)
    interfaces = [line.split(":")[0].strip() for line in r.stdout.splitlines()[2:] if ":" in line]
    assert r.ok and interfaces == ["lo"]


def test_subprocess_and_environment_secrets_are_not_available(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-reach-the-sandbox")
    r = run_python("import os\nprint(sorted(os.environ))", FAST)
    assert "OPENAI_API_KEY" not in r.stdout
    r = run_python("import subprocess\nsubprocess.run(['true'])", FAST)
    assert not r.ok and "not allowed" in r.stderr


def test_output_is_truncated():
    r = run_python("print('a' * 100000)", FAST)
    assert len(r.stdout) < 2100 and "truncated" in r.stdout


def test_an_exception_becomes_a_readable_observation():
    r = run_python("1 / 0", FAST)
    assert not r.ok and r.observation().endswith("ZeroDivisionError: division by zero")


def test_default_limits_offer_numpy_and_the_preloaded_stdlib():
    r = run_python("import numpy as np, statistics, fractions\nprint(np.arange(4).sum(), statistics.mean([1, 2]))")
    assert r.ok and r.stdout.split() == ["6", "1.5"], r.stderr
