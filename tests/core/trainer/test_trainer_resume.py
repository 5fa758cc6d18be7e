"""Checkpoints: a stopped-and-resumed run continues with exactly the same losses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.core.trainer.trainer_helpers import fast_config
from unisd_core import train
from unisd_core.callbacks import ListSink
from unisd_core.checkpoint import latest_checkpoint

CASES: dict[str, dict[str, Any]] = {
    # LoRA: both adapters (student and EMA teacher) and every component's state.
    "unisd_star-lora": {"preset": "unisd_star", "ema": {"ref_model_sync_steps": 1}},
    # Full fine-tuning: the student and a moving frozen-copy teacher.
    "ema-full": {
        "preset": "ema",
        "model": {"lora": {"enabled": False}},
        "ema": {"ref_model_sync_steps": 1},
    },
}


def losses(sink: ListSink) -> list[tuple[int, float]]:
    return sink.points["loss/total"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_continues_bit_for_bit(case: str, tmp_path: Path) -> None:
    overrides = dict(CASES[case])
    preset = overrides.pop("preset")
    cfg = fast_config(preset, train={"max_steps": 3, "checkpoint_every": 0}, **overrides)

    whole = ListSink()
    train(cfg, whole, output_dir=tmp_path / "whole")

    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    first = ListSink()
    stopped = train(cfg, first, stop_after_two, output_dir=tmp_path / "split")
    assert stopped.stopped_early
    assert stopped.steps_completed == 2
    assert stopped.checkpoint is not None
    assert stopped.checkpoint.name == "step-000002"

    second = ListSink()
    resumed = train(cfg, second, resume_from=tmp_path / "split", output_dir=tmp_path / "split")
    assert resumed.steps_completed == 3
    assert losses(first) + losses(second) == losses(whole)
    assert second.points["train/grad_norm"] == whole.points["train/grad_norm"][2:]


def test_checkpoint_layout(tmp_path: Path) -> None:
    cfg = fast_config("sft", train={"max_steps": 2, "checkpoint_every": 1})
    result = train(cfg, ListSink(), output_dir=tmp_path)
    found = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert found == ["step-000001", "step-000002"]
    assert result.checkpoint == tmp_path / "checkpoints" / "step-000002"
    last = latest_checkpoint(tmp_path)
    assert last == result.checkpoint
    assert json.loads((last / "config.json").read_text()) == json.loads(cfg.canonical_json())
    meta = json.loads((last / "meta.json").read_text())
    assert meta["step"] == 2
    assert meta["config_hash"] == cfg.config_hash()
    assert (last / "adapter" / "adapter_config.json").is_file()


def test_resume_refuses_a_different_run(tmp_path: Path) -> None:
    cfg = fast_config("sft", train={"max_steps": 1})
    train(cfg, ListSink(), output_dir=tmp_path)
    other = fast_config("sft", train={"max_steps": 2, "lr": 0.5})
    with pytest.raises(ValueError, match=r"train\.lr"):
        train(other, ListSink(), resume_from=tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(cfg, ListSink(), resume_from=tmp_path / "nothing-here")
