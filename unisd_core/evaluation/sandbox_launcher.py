"""Runs inside the sandbox's fresh interpreter (`python -I -B sandbox_launcher.py ROOT LIMITS`).

Stdlib only, and started single-threaded, so it may unshare namespaces and drop privileges safely
(a `preexec_fn` in the evaluator could deadlock: torch runs threads). Steps:
1. new network namespace (no interfaces up: no network) and PID namespace, when the OS allows;
2. fork: the child becomes PID 1 of the new namespace, so when it exits the kernel kills every
   process the program left behind, even those that escaped the process group;
3. in the child: resource limits, drop to `nobody` when started as root, chdir to the work dir,
   then run the program; the parent waits and records how the child ended in ROOT/meta.json
   (written as root, outside the program's reach).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import socket
import sys
import traceback
from typing import Any, NoReturn

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NOBODY = 65534


def unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def isolate() -> dict[str, Any]:
    """Try the strongest isolation the OS grants; return what was achieved."""
    attempts = [CLONE_NEWNET | CLONE_NEWPID]
    if os.geteuid() != 0:
        attempts = [CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID]
    for flags in attempts:
        try:
            unshare(flags)
            return {"network": "netns", "pid_namespace": True}
        except OSError as exc:
            failure = f"unshare failed: {exc.strerror}"
    return {"network": "socket-blocked", "pid_namespace": False, "fallback": failure}


def block_sockets() -> None:
    """Fallback where no network namespace is allowed: refuse to create sockets in Python."""

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise OSError("network access is disabled in the sandbox")

    socket.socket = refuse  # type: ignore[misc,assignment]
    socket.create_connection = refuse
    socket.socketpair = refuse


def limit(cpu_s: int, memory_bytes: int, file_bytes: int, nproc: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def run_child(root: str, limits: dict[str, Any], info: dict[str, Any]) -> None:
    work = os.path.join(root, "work")
    if limits["drop_uid"]:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    limit(limits["cpu_s"], limits["memory_bytes"], limits["file_bytes"], limits["nproc"])
    if info["network"] != "netns":
        block_sockets()
    os.chdir(work)
    path = os.path.join(work, "program.py")
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    sys.argv = ["program.py"]
    sys.path.insert(0, work)
    namespace = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__}
    exec(compile(source, "program.py", "exec"), namespace)


def write_meta(root: str, info: dict[str, Any]) -> None:
    path = os.path.join(root, "meta.json")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(info, handle)
    os.replace(path + ".tmp", path)


def main() -> None:
    root, limits = sys.argv[1], json.loads(sys.argv[2])
    info = isolate()
    info["uid_drop"] = bool(limits["drop_uid"])
    write_meta(root, info)  # early, so a run killed for time still reports its isolation
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            run_child(root, limits, info)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int) and exc.code is not None:
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        info["signal"] = signal.Signals(os.WTERMSIG(status)).name
        code = 128 + os.WTERMSIG(status)
    else:
        code = os.WEXITSTATUS(status)
    info["exit_code"] = code
    write_meta(root, info)
    os._exit(code)


if __name__ == "__main__":
    main()
