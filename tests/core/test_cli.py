"""The `unisd` command line: train writes its outputs; bad configs fail with the field named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from unisd_core.cli import _register_plugins, app
from unisd_core.data import BUNDLED_DIR

runner = CliRunner()
_register_plugins()


def test_train_writes_config_metrics_and_summary(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("preset: sft\ntrain:\n  max_steps: 2\n")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "train",
            str(config),
            "--set",
            "train.batch_size=2",
            *("--set", "data.max_eval_examples=4", "--set", "data.eval_max_new_tokens=8"),
            *("--set", "data.max_prompt_length=256"),
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # Two training steps, then the evaluation's metrics at the final step.
    assert [line["step"] for line in lines] == [1, 2, 2]
    assert "loss/total" in lines[0]["metrics"]
    assert "eval/scienceqa/accuracy" in lines[-1]["metrics"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_completed"] == 2
    assert "batch_size: 2" in (out / "config.yaml").read_text()
    report = json.loads((out / "eval" / "report.json").read_text())
    assert set(report["metrics"]) == {"scienceqa", "gpqa"}
    assert summary["eval_report"] == str(out / "eval" / "report.json")
    assert summary["eval"] == report["flat"]
    assert "eval report in" in result.output


def test_train_without_evaluation_and_the_base_preset(tmp_path: Path) -> None:
    off = runner.invoke(
        app,
        [
            "train",
            *("--preset", "sft", "--set", "train.max_steps=1"),
            *("--set", "data.evaluate_after_training=false", "--output", str(tmp_path / "a")),
        ],
    )
    assert off.exit_code == 0, off.output
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert (summary["eval_report"], summary["eval"]) == (None, None)
    assert not (tmp_path / "a" / "eval").exists()

    base = runner.invoke(
        app,
        [
            "train",
            *("--preset", "base", "--set", "data.max_eval_examples=2"),
            *("--set", "data.eval_max_new_tokens=4", "--output", str(tmp_path / "b")),
        ],
    )
    assert base.exit_code == 0, base.output
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["steps_completed"] == 0 and summary["checkpoint"] is None
    assert "eval/gpqa/accuracy" in summary["eval"]


def test_an_evaluation_error_keeps_the_training_summary(tmp_path: Path) -> None:
    """Training data for scienceqa only: the gpqa evaluation cannot find its file."""
    data = tmp_path / "data"
    shutil.copytree(BUNDLED_DIR / "scienceqa", data / "scienceqa")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "train",
            *("--preset", "sft", "--set", "train.max_steps=1"),
            *("--set", f"data.source=local:{data}", "--output", str(out)),
        ],
    )
    assert result.exit_code == 1
    assert "evaluation failed" in result.output and f"unisd eval {out}" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_completed"] == 1 and "gpqa" in summary["eval_error"]


def test_invalid_config_names_the_field(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--set", "train.max_steps=-3", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert "train.max_steps" in result.output
    assert not (tmp_path / "metrics.jsonl").exists()


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code != 0
    assert "config file not found" in result.output


def test_presets_lists_sft() -> None:
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0 and "sft" in result.output


def test_service_commands_are_registered() -> None:
    result = runner.invoke(app, ["--help"])
    for command in ("serve", "worker", "db", "train", "presets"):
        assert command in result.output
