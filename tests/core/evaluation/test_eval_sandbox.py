"""Hostile programs: each must end quickly as failed/timeout/error, leaving the test alive."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from unisd_core.evaluation.code import check_correctness
from unisd_core.evaluation.sandbox import CodeResult, run_program

NOT_PASSED = {"failed", "timeout", "error"}


def _run(program: str, timeout_s: float = 3.0) -> CodeResult:
    start = time.monotonic()
    result = check_correctness(program, timeout_s=timeout_s)
    assert time.monotonic() - start < timeout_s + 5  # "quickly": the limit plus cleanup
    return result


def _sandbox_processes() -> list[int]:
    """Live processes started by a sandbox launcher (their command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if b"sandbox_launcher.py" in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _wait_until_no_sandbox_processes() -> list[int]:
    deadline = time.monotonic() + 5
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    return _sandbox_processes()


def test_a_good_program_passes_and_reports_output() -> None:
    result = _run("print('hello')\nassert sum([1, 2]) == 3\n")
    assert result.passed
    assert result.status == "passed"
    assert result.output == "hello\n"


def test_a_failing_assert_and_a_syntax_error_fail() -> None:
    assert _run("assert 1 == 2").status == "failed"
    assert _run("def broken(:\n").status == "failed"


def test_infinite_loop_times_out() -> None:
    result = _run("while True:\n    pass\n", timeout_s=1.5)
    assert result.status == "timeout"
    assert not result.passed


def test_memory_bomb_is_stopped() -> None:
    result = _run("blocks = []\nwhile True:\n    blocks.append(bytearray(10**8))\n")
    assert result.status in NOT_PASSED


def test_fork_bomb_is_stopped_and_cleaned_up() -> None:
    program = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    result = _run(program, timeout_s=2.0)
    assert result.status in NOT_PASSED
    assert _wait_until_no_sandbox_processes() == []


def test_background_child_does_not_outlive_the_run() -> None:
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n    os._exit(0)\n"
        "print('parent done')\n"
    )
    assert _run(program).passed
    assert _wait_until_no_sandbox_processes() == []


def test_writing_outside_its_directory_fails(tmp_path: Path) -> None:
    target = tmp_path / "owned.txt"
    result = _run(f"open({str(target)!r}, 'w').write('x')\n")
    assert result.status in NOT_PASSED
    assert not target.exists()
    assert _run("open('inside.txt', 'w').write('fine')\n").passed  # its own dir is writable


def test_parent_environment_is_not_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNISD_TEST_SECRET", "hunter2")
    program = (
        "import os\n"
        "found = 'UNISD_TEST_SECRET' in os.environ\n"
        f"for pid in ({os.getpid()}, os.getppid()):\n"
        "    try:\n"
        "        found = found or b'hunter2' in open(f'/proc/{pid}/environ', 'rb').read()\n"
        "    except OSError:\n"
        "        pass\n"
        "assert found, 'secret not reachable'\n"
    )
    result = _run(program)
    assert result.status == "failed"
    assert "hunter2" not in result.output


def test_network_is_unreachable() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        program = (
            "import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "s.sendall(b'leak')\n"
        )
        result = _run(program)
        assert result.status in NOT_PASSED
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


def test_killing_the_parent_and_the_evaluator_fails() -> None:
    program = (
        "import os, signal\n"
        "os.kill(os.getppid(), signal.SIGKILL)\n"
        f"os.kill({os.getpid()}, signal.SIGKILL)\n"
    )
    result = _run(program)
    assert result.status in NOT_PASSED
    assert _run("pass").passed  # we are alive and the sandbox still works


def test_printing_a_gigabyte_is_capped() -> None:
    program = (
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n"
    )
    result = run_program(program, timeout_s=5.0, max_output_bytes=1000)
    assert result.status in NOT_PASSED
    assert len(result.output) <= 1000


def test_isolation_is_recorded() -> None:
    result = _run("pass")
    assert result.isolation["network"] in ("netns", "socket-blocked")
    assert "pid_namespace" in result.isolation
