"""A small JSON cache for model-written teacher texts (induced instructions, negatives).

Keyed by everything that determines the text (dataset, model, seed, request), under
`$UNISD_CACHE_DIR/teachers/` (or `$UNISD_TEACHER_CACHE_DIR`), so repeated runs and resumed runs
reuse rather than regenerate.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from unisd_core.modeling import cache_dir


def cache_path(kind: str, *key_parts: Any) -> Path:
    digest = hashlib.sha256(json.dumps(key_parts, sort_keys=True, default=str).encode())
    root = os.environ.get("UNISD_TEACHER_CACHE_DIR")
    base = Path(root) if root else cache_dir() / "teachers"
    return base / f"{kind}-{digest.hexdigest()[:24]}.json"


def load(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing or unreadable: regenerate


def save(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(value), encoding="utf-8")
    partial.replace(path)  # atomic: concurrent runs never read half a file
