from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from peft import LoraConfig, get_peft_model
from typer.testing import CliRunner

from unisd_core.cli import app
from unisd_core.config import ModelConfig, RunConfig
from unisd_core.evaluation.cli import EvalSetupError, default_benchmarks, resolve_target, run_eval
from unisd_core.modeling import load


def test_cli_eval_writes_report_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = [
        "eval",
        "--model",
        "builtin:tiny-random",
        "--benchmarks",
        "gsm8k,cose",
        "--limit",
        "2",
        "--max-new-tokens",
        "3",
        "--batch-size",
        "2",
        "--no-likelihoods",
        "--output",
        str(out),
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["metrics"]) == {"gsm8k", "cose"}
    assert report["resumed_items"] == 0
    assert "eval/cose/accuracy" in report["flat"]
    lines = (out / "items.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert {"prompt", "output", "extracted", "score"} <= set(json.loads(lines[0]))
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert json.loads((out / "report.json").read_text())["resumed_items"] == 4
    assert len((out / "items.jsonl").read_text().splitlines()) == 4
    changed = CliRunner().invoke(app, [*args[:-2], "--limit", "1", "--output", str(out)])
    assert changed.exit_code == 2
    assert "different evaluation" in changed.output


def test_cli_eval_reports_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--benchmarks", "nope", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown benchmark 'nope'" in result.output
    missing = CliRunner().invoke(app, ["eval", str(tmp_path / "none"), "--output", str(tmp_path)])
    assert missing.exit_code == 2


def test_run_dir_with_lora_checkpoint_gets_retention_metrics(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = RunConfig.model_validate({"data": {"benchmark": "gsm8k"}})
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    base = load(ModelConfig(name_or_path="builtin:tiny-random")).model
    lora = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    lora.save_pretrained(run_dir / "checkpoints" / "step-000002" / "adapter")
    target = resolve_target(run_dir, None)
    assert target.checkpoint == run_dir / "checkpoints" / "step-000002"
    report = run_eval(run_dir, [], tmp_path / "out", None, 2, 2, max_new_tokens=3, progress=False)
    metrics = report["metrics"]["gsm8k"]
    assert metrics["retention_ppl"] > 1.0
    assert metrics["retention_jsd"] == pytest.approx(0.0, abs=1e-6)  # fresh LoRA: B = 0
    assert report["flat"]["retention/ppl"] == pytest.approx(metrics["retention_ppl"])


def test_default_benchmarks_follow_the_config() -> None:
    assert default_benchmarks(None) == ["scienceqa"]
    mbpp = RunConfig.model_validate({"data": {"benchmark": "mbpp"}})
    assert default_benchmarks(mbpp) == ["mbpp", "humaneval"]
    with pytest.raises(EvalSetupError, match="does not exist"):
        resolve_target(Path("/no/such/run"), None)
