"""`unisd replicate --local` and `unisd replicate-report`: real tiny-model runs, real report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from unisd_core.cli import app
from unisd_core.replication.collect import ItemScores
from unisd_core.replication.report import ReportInput, build_report, item_level_vs_base

TINY = [
    "--model", "builtin:tiny-random", "--seeds", "1", "--max-steps", "2",
    "--max-eval-examples", "2", "--benchmarks", "scienceqa",
]  # fmt: skip


def synthetic_table() -> pd.DataFrame:
    rows = []
    for method, score in {"base": 0.3, "sft": 0.35, "opsd": 0.4}.items():
        for seed in [0] if method == "base" else [0, 1]:
            for benchmark in ("scienceqa", "gpqa"):
                rows.append(
                    {
                        "method": method,
                        "train_benchmark": "scienceqa",
                        "benchmark": benchmark,
                        "seed": seed,
                        "score": score + 0.01 * seed,
                        "retention_ppl": None if method == "base" else 2.0 - score + seed,
                        "n": 4,
                        "train_seconds": 10.0,
                        "eval_seconds": 5.0,
                        "run": f"{method}-{seed}",
                    }
                )
    return pd.DataFrame(rows)


def test_report_text_has_every_section() -> None:
    items = [
        ItemScores("base", "scienceqa", 0, {"a": 1.0, "b": 0.0, "c": 0.0, "d": 1.0}),
        ItemScores("opsd", "scienceqa", 0, {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0}),
        ItemScores("opsd", "scienceqa", 1, {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}),
    ]
    data = ReportInput(
        table=synthetic_table(),
        items=items,
        options={"model": "m", "source": "bundled", "benchmarks": ["scienceqa"]},
        budget={"max_steps": 4},
        command="unisd replicate ...",
    )
    text = build_report(data, {"Heatmap": "figures/heatmap.png"}, "Title")
    for heading in (
        "# Title", "## What was run", "## Scores", "## Gains over the base model",
        "## Retention", "## How precise", "## The paper's findings", "## Figures",
    ):  # fmt: skip
        assert heading in text
    assert "| method | scienceqa | gpqa (OOD) | overall |" in text
    assert "| opsd | 40.5 ± " in text  # seeds 0 and 1: 40 and 41
    assert "[Heatmap](figures/heatmap.png)" in text
    assert "±69.3 points" in text  # 4 items: worst-case half-width 1.96*sqrt(0.5/4)
    assert "**(1) SFT drifts" in text and "UNRESOLVED" in text
    paired = item_level_vs_base(items, ["scienceqa"])
    assert paired.iloc[0]["mean"] == pytest.approx((0.5 + 0.0 + 1.0 + 0.0) / 4)


@pytest.mark.slow
def test_replicate_local_then_report(tmp_path: Path) -> None:
    runner = CliRunner()
    root = tmp_path / "rep"
    planned = runner.invoke(app, ["replicate", *TINY, "--methods", "base,sft,opsd", "--dry-run"])
    assert planned.exit_code == 0, planned.output
    assert "3 runs" in planned.output

    first = runner.invoke(
        app, ["replicate", *TINY, "--methods", "base,sft,opsd", "--local", str(root)]
    )
    assert first.exit_code == 0, first.output
    table = pd.read_csv(root / "runs.csv")
    assert set(table["method"]) == {"base", "sft", "opsd"}
    assert set(table["benchmark"]) == {"scienceqa", "gpqa"}
    assert table["score"].between(0, 1).all() and (table["n"] == 2).all()
    cell = json.loads((root / "runs" / "sft-scienceqa-s0" / "cell.json").read_text())
    assert cell["steps"] == 2 and cell["finished"]

    again = runner.invoke(
        app, ["replicate", *TINY, "--methods", "base,sft,opsd", "--local", str(root)]
    )
    assert again.output.count("done earlier") == 3  # resumable: nothing is redone
    other = runner.invoke(app, ["replicate", *TINY, "--methods", "sft", "--local", str(root)])
    assert other.exit_code == 2 and "other options" in other.output

    report = tmp_path / "out" / "report.md"
    remarks = tmp_path / "remarks.md"
    remarks.write_text("Tiny model: the scores mean nothing.")
    made = runner.invoke(
        app, ["replicate-report", str(root), "--output", str(report), "--notes", str(remarks)]
    )
    assert made.exit_code == 0, made.output
    text = report.read_text()
    assert "## Notes from the people who ran it\n\nTiny model: the scores mean nothing." in text
    assert "hours of wall-clock time" in text
    assert "| method | scienceqa | gpqa (OOD) | overall |" in text
    assert "--methods base,sft,opsd" in text  # how to reproduce it
    figures = sorted(p.name for p in (tmp_path / "out" / "figures").iterdir())
    suffix = ".png" if shutil.which("chromium") else ".html"
    assert figures == [f"forest{suffix}", f"heatmap{suffix}", f"pareto{suffix}"]


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["replicate", "--methods", "warp", "--dry-run"])
    assert bad.exit_code == 2 and "unknown method" in bad.output
    shard = runner.invoke(app, ["replicate", *TINY, "--local", str(tmp_path), "--shard", "x"])
    assert shard.exit_code == 2 and "--shard" in shard.output
    report = runner.invoke(app, ["replicate-report", str(tmp_path)])
    assert report.exit_code == 2 and "not a `unisd replicate --local` folder" in report.output
    offline = runner.invoke(
        app, ["replicate", *TINY, "--api", "http://127.0.0.1:9", "--methods", "sft"]
    )
    assert offline.exit_code == 2 and "cannot reach the server" in offline.output


def test_a_cell_is_claimed_by_one_live_process(tmp_path: Path) -> None:
    import os
    import subprocess

    from unisd_core.replication.local import CLAIM_FILE, claim

    cell = tmp_path / "cell"
    other = subprocess.Popen(["sleep", "30"])
    try:
        cell.mkdir()
        (cell / CLAIM_FILE).write_text(str(other.pid))
        assert not claim(cell)  # a live process holds it
    finally:
        other.kill()
        other.wait()
    assert claim(cell)  # its holder died: taken over
    assert (cell / CLAIM_FILE).read_text() == str(os.getpid())
    assert claim(cell)  # ours already
