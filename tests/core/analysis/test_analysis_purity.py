"""The analysis package stays torch-free and independent of the rest of the repository."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import unisd_core.analysis

ALLOWED_THIRD_PARTY = {"numpy", "scipy", "pandas", "pydantic", "statsmodels"}
PACKAGE = Path(unisd_core.analysis.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_sources_import_only_allowed_modules() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        for name in _imported_modules(path):
            top = name.split(".")[0]
            if top == "unisd_core":
                assert name.startswith("unisd_core.analysis"), f"{path.name} imports {name}"
            else:
                assert top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names, (
                    f"{path.name} imports {name}"
                )


def test_import_pulls_in_no_torch_or_other_packages() -> None:
    code = (
        "import sys, unisd_core.analysis, unisd_core.analysis.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'transformers', 'backend', 'workers', 'frontend', 'typer'} "
        "or (m.startswith('unisd_core.') and not m.startswith('unisd_core.analysis')))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
