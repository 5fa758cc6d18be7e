"""Run untrusted, model-written Python in a separate, limited process.

Each call gets a fresh temporary root with a work dir (the program's cwd), a fresh isolated
interpreter (`python -I -B`, scrubbed environment, own session), and the launcher in
`sandbox_launcher.py`, which adds a network and PID namespace where the OS allows it, CPU/memory/
file-size/process limits, and drops to `nobody` when run as root. The evaluator enforces the
wall-clock limit and kills the whole process group afterwards; the PID namespace makes the kernel
kill anything that escaped the group. Output goes to a file capped by RLIMIT_FSIZE, so a program
printing gigabytes is stopped by the kernel instead of filling a pipe or the evaluator's memory.

Status: `passed` (exit 0), `failed` (non-zero exit: an assert, an exception, MemoryError),
`timeout` (wall-clock or CPU limit), `error` (the sandbox stopped it for another reason, e.g.
output/file size, or could not start it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["passed", "failed", "timeout", "error"]
LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")
NOBODY = 65534
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class CodeResult:
    passed: bool
    status: Status
    output: str = ""  # the first `max_output_bytes` of stdout+stderr
    duration_s: float = 0.0
    detail: str = ""
    isolation: dict[str, Any] = field(default_factory=dict)


def _world_readable(path: Path) -> bool:
    """True when a user with no rights but 'other' can read `path` (every ancestor searchable)."""
    try:
        if not path.stat().st_mode & stat.S_IROTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.resolve().parents)
    except OSError:
        return False


@functools.cache
def sandbox_python() -> tuple[str, bool]:
    """The interpreter for sandboxed programs and whether it may drop to `nobody`.

    Dropping privileges needs an interpreter whose standard library `nobody` can read; a Python
    under root's home (pyenv) is not, so a world-readable system Python is preferred then, and
    without one the sandbox keeps the uid and records that fallback. `UNISD_SANDBOX_PYTHON`
    overrides the choice.
    """
    override = os.environ.get("UNISD_SANDBOX_PYTHON")
    if override:
        return override, os.geteuid() == 0
    if os.geteuid() != 0:
        return sys.executable, False
    candidates = [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]
    for candidate in candidates:
        exe = Path(candidate)
        if not exe.is_file():
            continue
        stdlib = _stdlib_of(candidate)
        if stdlib is not None and _world_readable(exe.resolve()) and _world_readable(stdlib):
            return candidate, True
    return sys.executable, False


def _stdlib_of(python: str) -> Path | None:
    if python == sys.executable:
        return Path(sysconfig.get_paths()["stdlib"]) / "os.py"
    try:
        found = subprocess.run(
            [python, "-I", "-c", "import os; print(os.__file__)"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(found) if found else None


def _environment(root: Path) -> dict[str, str]:
    """Nothing inherited: secrets in the evaluator's environment never reach the program."""
    return {
        "PATH": SAFE_PATH,
        "HOME": str(root / "work"),
        "TMPDIR": str(root / "work"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_program(
    program: str,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    max_output_bytes: int = 64_000,
    max_file_mb: int = 16,
    max_processes: int = 64,
) -> CodeResult:
    """Run `program` as a script in the sandbox and classify how it ended."""
    root = Path(tempfile.mkdtemp(prefix="unisd-sandbox-"))
    start = time.monotonic()
    try:
        work = root / "work"
        work.mkdir()
        (work / "program.py").write_text(program, encoding="utf-8")
        python, drop_uid = sandbox_python()
        if drop_uid:
            root.chmod(0o711)  # nobody may pass through to work/, not list or write the root
            os.chown(work, NOBODY, NOBODY)  # the only place the dropped program may write
        limits = {
            "drop_uid": drop_uid,
            "cpu_s": max(1, math.ceil(timeout_s)),
            "memory_bytes": memory_mb * 1024 * 1024,
            "file_bytes": max(max_output_bytes, max_file_mb * 1024 * 1024),
            "nproc": max_processes,
        }
        out_path = root / "output.txt"
        with out_path.open("wb") as out:
            try:
                proc = subprocess.Popen(
                    [python, "-I", "-B", str(LAUNCHER), str(root), json.dumps(limits)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=root,
                    env=_environment(root),
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                return CodeResult(False, "error", detail=f"could not start the sandbox: {exc}")
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_group(proc.pid)  # leftovers (background children) go too
            proc.wait()
        duration = time.monotonic() - start
        with out_path.open("rb") as handle:
            output = handle.read(max_output_bytes).decode("utf-8", errors="replace")
        output_full = out_path.stat().st_size >= limits["file_bytes"]
        meta: dict[str, Any] = {}
        meta_path = root / "meta.json"
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                meta = {}
        isolation: dict[str, Any] = {
            k: meta[k] for k in ("network", "pid_namespace", "uid_drop", "fallback") if k in meta
        }
        if timed_out:
            return CodeResult(
                False, "timeout", output, duration, f"wall clock > {timeout_s}s", isolation
            )
        killed_by = meta.get("signal")
        if killed_by in ("SIGXCPU", "SIGKILL") and "exit_code" in meta:
            return CodeResult(
                False, "timeout", output, duration, f"CPU limit ({killed_by})", isolation
            )
        if killed_by == "SIGXFSZ" or output_full:
            return CodeResult(
                False, "error", output, duration, "output or file size limit", isolation
            )
        if killed_by:
            return CodeResult(False, "error", output, duration, f"killed by {killed_by}", isolation)
        if "exit_code" not in meta:
            return CodeResult(
                False,
                "error",
                output,
                duration,
                f"sandbox ended abnormally (return code {proc.returncode})",
                isolation,
            )
        if meta["exit_code"] == 0:
            return CodeResult(True, "passed", output, duration, "", isolation)
        return CodeResult(
            False, "failed", output, duration, f"exit code {meta['exit_code']}", isolation
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
