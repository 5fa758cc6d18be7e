"""From finished runs to the analysis table (one row per run x evaluation benchmark).

Columns: ``method``, ``train_benchmark``, ``benchmark``, ``seed``, ``score`` (the benchmark's
headline metric), ``retention_ppl``, ``gold_ppl``, ``n`` (items), ``run`` (where it came from),
plus timings when known. Item-level scores are kept apart (``ItemScores``): they give the
evaluation-sampling error of a fixed subset, which seeds do not show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

TABLE_COLUMNS = [
    "method",
    "train_benchmark",
    "benchmark",
    "seed",
    "score",
    "retention_ppl",
    "gold_ppl",
    "n",
    "train_seconds",
    "eval_seconds",
    "run",
]
#: What a run folder of the local runner records about itself (beside config.yaml and eval/).
CELL_FILE = "cell.json"


@dataclass(frozen=True)
class ItemScores:
    """Per-item scores of one run on one benchmark, keyed by item id."""

    method: str
    benchmark: str
    seed: int
    scores: dict[str, float]


def rows_from_report(cell: Mapping[str, Any], report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Table rows of one evaluated run: its cell (method, benchmark, seed) and its eval report."""
    rows = []
    for benchmark, metrics in report["metrics"].items():
        rows.append(
            {
                "method": cell["method"],
                "train_benchmark": cell["benchmark"],
                "benchmark": benchmark,
                "seed": int(cell["seed"]),
                "score": metrics.get("score"),
                "retention_ppl": metrics.get("retention_ppl"),
                "gold_ppl": metrics.get("gold_ppl"),
                "n": int(metrics.get("n", 0)),
                "train_seconds": cell.get("train_seconds"),
                "eval_seconds": report.get("seconds"),
                "run": cell.get("run"),
            }
        )
    return rows


def table_from_rows(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=TABLE_COLUMNS)


def read_cell(run_dir: Path) -> dict[str, Any] | None:
    """The cell record of a finished local run, or None while it is unfinished."""
    path = run_dir / CELL_FILE
    report = run_dir / "eval" / "report.json"
    if not path.is_file() or not report.is_file():
        return None
    cell: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return cell if cell.get("finished") else None


def collect_local(root: Path) -> tuple[pd.DataFrame, list[ItemScores]]:
    """Every finished run under ``root/runs``: the table and the per-item scores."""
    rows: list[dict[str, Any]] = []
    items: list[ItemScores] = []
    for run_dir in sorted((root / "runs").glob("*")):
        cell = read_cell(run_dir)
        if cell is None:
            continue
        report = json.loads((run_dir / "eval" / "report.json").read_text(encoding="utf-8"))
        rows += rows_from_report({**cell, "run": run_dir.name}, report)
        items += read_items(run_dir / "eval" / "items.jsonl", cell)
    return table_from_rows(rows), items


def read_items(path: Path, cell: Mapping[str, Any]) -> list[ItemScores]:
    by_benchmark: dict[str, dict[str, float]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted write
            by_benchmark.setdefault(record["benchmark"], {})[str(record["id"])] = float(
                record["score"]
            )
    return [
        ItemScores(str(cell["method"]), benchmark, int(cell["seed"]), scores)
        for benchmark, scores in by_benchmark.items()
    ]
