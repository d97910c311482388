"""The process the sandbox starts (``python -I -B sandbox_child.py LIMITS_JSON``); never imported by the agent.

In order: import the allowed modules (before privileges are dropped, so that an interpreter installed
in a private directory still works), set the ``resource`` limits, drop root to an unprivileged uid
(RLIMIT_NPROC does not bind root), install an audit hook (no writes outside the working directory,
no sockets, no exec of other programs, no ctypes), then run ``main.py``.
"""

import json
import os
import resource
import sys
import traceback

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {
    "os.remove",
    "os.rename",
    "os.mkdir",
    "os.rmdir",
    "os.symlink",
    "os.link",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.utime",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copyfile",
}
_DENIED = {
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "subprocess.Popen",
    "os.forkpty",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "ctypes.cdata",
    "sys.remote_exec",
}


def _count_processes(uid: int) -> int:
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/status") as f:
                    n += any(line.startswith("Uid:") and line.split()[1] == str(uid) for line in f)
            except OSError:
                pass
    return n


def _install_hook(workdir: str) -> None:
    root = os.path.realpath(workdir) + os.sep

    def inside(path) -> bool:
        if isinstance(path, int) or path is None:
            return True
        path = os.fsdecode(path)
        return path == os.devnull or os.path.realpath(os.path.join(root, path)).startswith(root)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(flags & _WRITE_FLAGS)
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing outside the working directory is not allowed: {path}")
        elif event in _PATH_EVENTS:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)) and not inside(path):
                    raise PermissionError(f"sandbox: {event} outside the working directory is not allowed: {path}")
        elif event.startswith("socket.") and event != "socket.gethostname":
            raise PermissionError("sandbox: network access is disabled")
        elif event in _DENIED:
            raise PermissionError(f"sandbox: {event} is not allowed (Python code only)")

    sys.addaudithook(hook)


def _run() -> None:
    cfg = json.loads(sys.argv[1])
    for name in cfg["preload"]:
        try:
            __import__(name)
        except ImportError:
            pass
    mb = 1024 * 1024
    limits = [
        (resource.RLIMIT_AS, cfg["memory_mb"] * mb),
        (resource.RLIMIT_CPU, cfg["cpu_s"]),
        (resource.RLIMIT_FSIZE, cfg["max_file_mb"] * mb),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ]
    for kind, value in limits:
        resource.setrlimit(kind, (value, value))
    if cfg["drop_uid"] is not None:
        os.setgroups([])
        os.setgid(cfg["drop_uid"])
        os.setuid(cfg["drop_uid"])
    nproc = _count_processes(os.getuid()) + cfg["max_procs"]
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    _install_hook(os.getcwd())
    with open("main.py") as f:
        code = compile(f.read(), "main.py", "exec")
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit:
        raise
    except BaseException as e:  # the traceback of the user's code only, not of this runner
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != "main.py":
            tb = tb.tb_next
        traceback.print_exception(type(e), e, tb)
        sys.exit(1)


if __name__ == "__main__":
    _run()
