"""Pure UI functions: form values -> RunConfig payloads, and data -> figures."""

from __future__ import annotations

from frontend.forms import config_from_form, validation_message
from frontend.plots import PALETTE, metric_curves
from unisd_core.config import RunConfig


def test_form_values_become_a_valid_config() -> None:
    payload = config_from_form("sft", "builtin:tiny-random", "scienceqa", 3.0)
    assert validation_message(payload) is None
    cfg = RunConfig.model_validate(payload)
    assert (cfg.preset, cfg.model.name_or_path, cfg.train.max_steps) == (
        "sft",
        "builtin:tiny-random",
        3,
    )


def test_invalid_form_values_are_explained_with_the_field() -> None:
    message = validation_message(config_from_form("sft", "builtin:nope", "scienceqa", -1))
    assert message is not None
    assert "train.max_steps" in message and "model.name_or_path" in message


def test_curves_carry_the_data_and_distinct_colours() -> None:
    figure = metric_curves({"loss/total": [(1, 3.0), (2, 2.5)], "train/lr": [(1, 0.1)]}, title="t")
    assert [trace.name for trace in figure.data] == ["loss/total", "train/lr"]
    assert list(figure.data[0].x) == [1, 2] and list(figure.data[0].y) == [3.0, 2.5]
    assert figure.data[0].line.color == PALETTE[0] != figure.data[1].line.color
    assert figure.layout.xaxis.title.text == "step"
