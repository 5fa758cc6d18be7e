"""The SFT trainer on the tiny model: metrics every step, stop at step boundaries, learning."""

from __future__ import annotations

from unisd_core import train
from unisd_core.callbacks import ListSink
from unisd_core.config import RunConfig


def test_every_step_reports_namespaced_metrics() -> None:
    sink = ListSink()
    result = train(
        RunConfig.model_validate({"objective": "sft", "train": {"max_steps": 3, "batch_size": 2}}),
        sink,
    )
    assert result.steps_completed == 3 and not result.stopped_early
    for key in ("loss/total", "train/lr", "train/grad_norm", "sys/tokens_per_s"):
        assert [step for step, _ in sink.points[key]] == [1, 2, 3]
    assert all(value > 0 for _, value in sink.points["sys/tokens_per_s"])


def test_stop_signal_is_honoured_between_steps() -> None:
    sink = ListSink()
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    result = train(
        RunConfig.model_validate({"objective": "sft", "train": {"max_steps": 10}}),
        sink,
        stop_after_two,
    )
    assert result.stopped_early and result.steps_completed == 2
    assert len(sink.points["loss/total"]) == 2


def test_sft_reduces_the_loss_on_repeated_data() -> None:
    sink = ListSink()
    cfg = RunConfig.model_validate(
        {"objective": "sft", "train": {"max_steps": 12, "batch_size": 4, "lr": 3e-3}}
    )
    train(cfg, sink)
    losses = [value for _, value in sink.points["loss/total"]]
    assert sum(losses[-3:]) / 3 < losses[0] - 0.5


def test_same_seed_same_losses() -> None:
    cfg = RunConfig.model_validate({"objective": "sft", "train": {"max_steps": 2, "seed": 5}})
    first, second = ListSink(), ListSink()
    train(cfg, first)
    train(cfg, second)
    assert first.points["loss/total"] == second.points["loss/total"]
