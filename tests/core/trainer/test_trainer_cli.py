"""`unisd train`: checkpoints in OUTPUT, --resume continues from the newest one."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from unisd_core.cli import app

FAST = [
    "--set",
    "data.max_prompt_length=256",
    "--set",
    "train.batch_size=2",
    "--set",
    "train.max_new_tokens=4",
    "--set",
    "model.lora.r=4",
    "--set",
    "data.evaluate_after_training=false",  # these tests are about training and resuming
]


def test_train_then_resume_extends_the_run(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    first = runner.invoke(
        app,
        ["train", "--preset", "clip", *FAST, "--set", "train.max_steps=2", "--output", str(out)],
    )
    assert first.exit_code == 0, first.output
    assert (out / "checkpoints" / "step-000002" / "state.pt").is_file()
    again = runner.invoke(
        app,
        [
            "train",
            "--preset",
            "clip",
            *FAST,
            "--set",
            "train.max_steps=3",
            "--output",
            str(out),
            "--resume",
        ],
    )
    assert again.exit_code == 0, again.output
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_completed"] == 3
    assert summary["checkpoint"].endswith("step-000003")


def test_missing_model_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "--set", "model.name_or_path=/nonexistent/model", "--output", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "/nonexistent/model" in result.output
