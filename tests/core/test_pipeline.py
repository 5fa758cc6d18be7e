"""train_and_evaluate on the tiny model: train, then evaluate the result into OUTPUT/eval."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from unisd_core.callbacks import ListSink
from unisd_core.config import RunConfig
from unisd_core.pipeline import EVAL_SEED, train_and_evaluate
from unisd_core.trainer import TrainResult

#: Small budgets: 4 items per benchmark, 8 generated tokens each, a short prompt limit.
FAST_EVAL = {"max_eval_examples": 4, "eval_max_new_tokens": 8, "max_prompt_length": 256}


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # Two cores shared with other processes: one thread is faster than two fighting for them.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def config(**raw: Any) -> RunConfig:
    data = {**FAST_EVAL, **raw.pop("data", {})}
    train = {"max_steps": 2, "batch_size": 1, **raw.pop("train", {})}
    return RunConfig.model_validate(
        {
            "preset": "sft",
            "model": {"lora": {"enabled": True, "r": 4, "alpha": 8}},
            "data": data,
            "train": train,
            **raw,
        }
    )


def items(eval_dir: Path) -> list[dict[str, Any]]:
    lines = (eval_dir / "items.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_sft_trains_then_evaluates_the_checkpoint(tmp_path: Path) -> None:
    cfg = config()
    sink = ListSink()
    result = train_and_evaluate(cfg, sink, output_dir=tmp_path)

    assert (result.train.steps_completed, result.stopped_early) == (2, False)
    assert result.eval_dir == tmp_path / "eval"
    report = result.eval_report
    assert report is not None and result.benchmarks == ["gpqa", "scienceqa"]
    assert report["settings"]["seed"] == EVAL_SEED  # not the training seed: paired items
    assert report["settings"]["max_new_tokens"] == 8
    assert report["settings"]["checkpoint"].endswith("step-000002")
    assert "+" in report["model"]  # the base model with the run's adapters on top
    assert report["metrics"]["scienceqa"]["n"] == 4 and report["metrics"]["gpqa"]["n"] == 4
    on_disk = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert on_disk["flat"] == report["flat"]
    assert len(items(tmp_path / "eval")) == 8
    assert RunConfig.from_yaml((tmp_path / "config.yaml").read_text()) == cfg
    # The eval metrics reach the sink once, at the final training step.
    accuracy = report["flat"]["eval/scienceqa/accuracy"]
    assert sink.points["eval/scienceqa/accuracy"] == [(2, accuracy)]
    assert [step for step, _ in sink.points["eval/gpqa/accuracy"]] == [2]
    assert "retention/ppl" in sink.points  # adapters vs the base they were trained on
    assert result.eval_seconds is not None and result.eval_seconds > 0


def test_the_base_preset_only_evaluates(tmp_path: Path) -> None:
    cfg = RunConfig.model_validate({"preset": "base", "data": FAST_EVAL})
    sink = ListSink()
    result = train_and_evaluate(cfg, sink, output_dir=tmp_path)

    assert result.train == TrainResult(steps_completed=0, stopped_early=False)
    assert not (tmp_path / "checkpoints").exists()
    report = result.eval_report
    assert report is not None and report["settings"]["checkpoint"] is None
    assert report["model"] == "builtin:tiny-random"
    assert set(report["metrics"]) == {"scienceqa", "gpqa"}
    assert [step for step, _ in sink.points["eval/scienceqa/accuracy"]] == [0]
    assert not any(key.startswith("loss/") for key in sink.points)


def test_evaluation_can_be_switched_off(tmp_path: Path) -> None:
    sink = ListSink()
    result = train_and_evaluate(
        config(data={"evaluate_after_training": False}), sink, output_dir=tmp_path
    )
    assert result.train.steps_completed == 2
    assert (result.eval_report, result.eval_dir) == (None, None)
    assert not (tmp_path / "eval").exists()
    assert not any(key.startswith("eval/") for key in sink.points)


def test_eval_benchmarks_and_batch_size_come_from_the_config(tmp_path: Path) -> None:
    cfg = config(data={"eval_benchmarks": ["gsm8k"], "eval_batch_size": 3})
    result = train_and_evaluate(cfg, ListSink(), output_dir=tmp_path)
    assert result.benchmarks == ["gsm8k"]
    assert len(items(tmp_path / "eval")) == 4


def test_a_stop_during_evaluation_keeps_items_and_a_resumed_run_finishes_it(
    tmp_path: Path,
) -> None:
    cfg = config(data={"eval_batch_size": 2})
    trained: list[TrainResult] = []
    eval_dir = tmp_path / "eval"

    def stop_after_the_first_eval_chunk() -> bool:
        return bool(trained) and (eval_dir / "items.jsonl").is_file()

    sink = ListSink()
    first = train_and_evaluate(
        cfg, sink, stop_after_the_first_eval_chunk, output_dir=tmp_path, on_trained=trained.append
    )
    assert first.eval_stopped and first.stopped_early and first.eval_report is None
    assert not first.train.stopped_early and first.train.steps_completed == 2
    assert len(items(eval_dir)) == 2 and not (eval_dir / "report.json").exists()
    assert not any(key.startswith("eval/") for key in sink.points)

    # What a re-delivered task does: resume from the run directory. Training has nothing left
    # to do; the evaluation reuses the two finished items and does the other six.
    second = train_and_evaluate(cfg, sink, output_dir=tmp_path, resume_from=tmp_path)
    assert second.train.steps_completed == 2 and not second.stopped_early
    assert second.eval_report is not None and second.eval_report["resumed_items"] == 2
    assert len(items(eval_dir)) == 8
    assert [step for step, _ in sink.points["eval/scienceqa/accuracy"]] == [2]


def test_a_stop_after_the_last_step_skips_the_evaluation(tmp_path: Path) -> None:
    trained: list[TrainResult] = []
    result = train_and_evaluate(
        config(), ListSink(), lambda: bool(trained), output_dir=tmp_path, on_trained=trained.append
    )
    assert result.eval_stopped and result.eval_report is None
    assert not (tmp_path / "eval" / "report.json").exists()


def test_training_again_from_scratch_does_not_reuse_old_eval_items(tmp_path: Path) -> None:
    train_and_evaluate(config(), ListSink(), output_dir=tmp_path)
    again = train_and_evaluate(config(train={"seed": 7}), ListSink(), output_dir=tmp_path)
    assert again.eval_report is not None and again.eval_report["resumed_items"] == 0
    assert len(items(tmp_path / "eval")) == 8
    saved = RunConfig.from_yaml((tmp_path / "config.yaml").read_text())
    assert saved.train.seed == 7  # the directory describes the run trained last
