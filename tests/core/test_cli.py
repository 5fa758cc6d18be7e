"""The `unisd` command line: train writes its outputs; bad configs fail with the field named."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from unisd_core.cli import _register_plugins, app

runner = CliRunner()
_register_plugins()


def test_train_writes_config_metrics_and_summary(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("preset: sft\ntrain:\n  max_steps: 2\n")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["train", str(config), "--set", "train.batch_size=2", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert "loss/total" in lines[0]["metrics"]
    assert json.loads((out / "summary.json").read_text())["steps_completed"] == 2
    assert "batch_size: 2" in (out / "config.yaml").read_text()


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
