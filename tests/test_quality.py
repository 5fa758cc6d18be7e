"""Quality gates: lint, formatting, types and the architecture's import rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy", "unisd_core", "backend", "workers", "frontend"),
        ("lint-imports",),
    ],
    ids=["ruff-check", "ruff-format", "mypy", "import-linter"],
)
def test_gate(command: tuple[str, ...]) -> None:
    result = run(str(BIN / command[0]), *command[1:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def test_api_starts_without_torch() -> None:
    code = (
        "import sys\n"
        "from backend.main import create_app\n"
        "from backend.settings import Settings\n"
        "create_app(Settings(auth='off', database_url='sqlite://'))\n"
        "print('torch' in sys.modules)\n"
    )
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
