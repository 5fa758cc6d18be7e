"""The New-run form: generated from RunConfig, values <-> config round trips, YAML, estimates."""

from __future__ import annotations

import pytest

from frontend import forms
from frontend.forms import SPEC_BY_PATH, SPECS
from unisd_core.config import COMPONENTS, RunConfig
from unisd_core.presets import PRESETS


def test_every_config_leaf_is_a_form_field_with_a_tooltip() -> None:
    paths = {spec.path for spec in SPECS}
    for component in COMPONENTS:
        assert f"{component}.enabled" in paths
    assert {"model.name_or_path", "data.benchmark", "train.max_steps", "resources.gpus"} <= paths
    assert "preset" not in paths
    assert all(spec.description for spec in SPECS), [s.path for s in SPECS if not s.description]
    assert SPEC_BY_PATH["agreement.enabled"].kind == "bool"
    assert SPEC_BY_PATH["agreement.granularity"].kind == "choice"
    assert SPEC_BY_PATH["train.max_steps"].kind == "int"
    assert SPEC_BY_PATH["train.max_steps"].optional
    assert SPEC_BY_PATH["data.eval_benchmarks"].kind == "multichoice"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_the_form(name: str) -> None:
    values = forms.values_from_preset(name)
    payload = forms.config_from_values(values, name)
    assert forms.field_errors(payload) == {}
    rebuilt = RunConfig.model_validate(payload)
    assert rebuilt.model_dump(exclude={"preset"}) == PRESETS[name].model_dump(exclude={"preset"})
    assert forms.values_from_config(rebuilt) == values


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_view_round_trips(name: str) -> None:
    values = forms.values_from_preset(name)
    text = forms.yaml_from_values(values, name)
    parsed, preset, problem = forms.values_from_yaml(text)
    assert problem == "" and preset == name
    assert parsed == values


def test_a_preset_keeps_the_users_model_and_data() -> None:
    current = forms.values_from_preset("sft")
    current["model.name_or_path"] = "Qwen/Qwen2.5-0.5B-Instruct"
    current["data.benchmark"] = "gsm8k"
    filled = forms.values_from_preset("unisd_star", current)
    assert filled["model.name_or_path"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert filled["data.benchmark"] == "gsm8k"
    assert filled["agreement.enabled"] and filled["ema.enabled"]


def test_ui_values_convert_to_config_types() -> None:
    values = forms.values_from_preset("sft")
    values["train.max_steps"] = 7.0  # gr.Number hands floats
    values["model.lora.target_modules"] = "q_proj, v_proj"
    values["model.revision"] = ""
    payload = forms.config_from_values(values, "sft")
    cfg = RunConfig.model_validate(payload)
    assert cfg.train.max_steps == 7
    assert cfg.model.lora.target_modules == ("q_proj", "v_proj")
    assert cfg.model.revision is None


def test_evaluation_fields_are_in_the_form() -> None:
    assert forms.SPEC_BY_PATH["data.evaluate_after_training"].kind == "bool"
    budget = forms.SPEC_BY_PATH["data.eval_max_new_tokens"]
    assert (budget.kind, budget.optional, budget.default) == ("int", True, None)
    values = forms.values_from_preset("sft")
    assert values["data.evaluate_after_training"] is True
    values["data.evaluate_after_training"] = False
    values["data.eval_batch_size"] = 4.0  # gr.Number hands floats
    values["data.eval_max_new_tokens"] = "32"
    cfg = RunConfig.model_validate(forms.config_from_values(values, "sft"))
    assert (cfg.data.evaluate_after_training, cfg.data.eval_batch_size) == (False, 4)
    assert cfg.data.eval_max_new_tokens == 32
    values["data.eval_max_new_tokens"] = ""  # an emptied optional field means "default"
    assert (
        RunConfig.model_validate(forms.config_from_values(values, "sft")).data.eval_max_new_tokens
        is None
    )


def test_invalid_values_are_reported_per_field() -> None:
    values = forms.values_from_preset("agree")
    values["train.max_steps"] = -5
    values["agreement.num_auxiliary_contexts"] = 1
    errors = forms.field_errors(forms.config_from_values(values, "agree"))
    assert set(errors) == {"train.max_steps", "agreement.num_auxiliary_contexts"}
    markdown = forms.errors_markdown(errors)
    assert "train.max_steps" in markdown and "Fix before submitting" in markdown
    assert "invalid" in forms.yaml_from_values(values, "agree")


def test_bad_yaml_is_explained_not_applied() -> None:
    values, preset, problem = forms.values_from_yaml("train: {max_steps: 0}")
    assert values is None and preset is None and "train.max_steps" in problem
    values, _, problem = forms.values_from_yaml("train: [unclosed")
    assert values is None and "YAML" in problem


def test_minimal_form_is_a_valid_config() -> None:
    payload = forms.config_from_form("sft", "builtin:tiny-random", "scienceqa", 3.0)
    assert forms.validation_message(payload) is None
    message = forms.validation_message(forms.config_from_form("sft", "builtin:x", "scienceqa", -1))
    assert message and "train.max_steps" in message and "model.name_or_path" in message


def test_estimate_grows_with_model_and_steps() -> None:
    small = forms.estimate(forms.config_from_values(forms.values_from_preset("gkd")))
    big_values = forms.values_from_preset("gkd")
    big_values["model.name_or_path"] = "Qwen/Qwen2.5-0.5B-Instruct"
    big = forms.estimate(forms.config_from_values(big_values))
    assert small.minutes is not None and big.minutes is not None
    assert big.minutes > small.minutes and (big.memory_gb or 0) > (small.memory_gb or 0)
    assert forms.model_params("meta-llama/Llama-3.1-8B") == 8e9
    assert forms.estimate({"model": {"name_or_path": "/models/mine"}}).minutes is None
    assert "unknown" in forms.estimate({"model": {"name_or_path": "x"}}).markdown()


def test_designs_have_the_expected_runs() -> None:
    factors = forms.ablation_factors(["agreement", "ema"], [("train.lr", "1e-5, 1e-4")])
    assert factors["train.lr"] == [1e-5, 1e-4]
    full = forms.design_matrix(factors, "full", 2)
    assert len(full) == 8 * 2
    half = forms.design_rows(factors, "fractional")
    assert len(half) == 4
    # every factor is balanced in the half fraction
    for name, levels in factors.items():
        assert sum(row[name] == levels[1] for row in half) == 2
    one = forms.design_rows(factors, "one_at_a_time")
    assert len(one) == 4 and one[0] == {n: v[0] for n, v in factors.items()}
    two_by_two = forms.design_matrix(forms.ablation_factors(["agreement", "ema"]), "full", 2)
    assert len(two_by_two) == 8 and {r["seed"] for r in two_by_two} == {0, 1}


def test_overrides_apply_dotted_paths() -> None:
    base = forms.config_from_form("gkd", "builtin:tiny-random", "scienceqa", 2)
    run = forms.with_overrides(base, {"agreement.enabled": True, "train.seed": 43})
    assert run["agreement"]["enabled"] and run["train"] == {"max_steps": 2, "seed": 43}
    assert "agreement" not in base
    assert forms.validation_message(run) is None


def test_sweep_body_matches_the_sweeps_api() -> None:
    from frontend.tabs.ablation import sweep_body

    body = sweep_body(
        "abl",
        "gkd",
        "builtin:tiny-random",
        "scienceqa",
        1,
        ["agreement", "ema"],
        [("train.lr", "1e-5, 1e-4"), ("", "")],
        "full",
        2,
    )
    assert body["factors"] == [
        {"name": "agreement"},
        {"name": "ema"},
        {"name": "train.lr", "levels": [1e-5, 1e-4]},
    ]
    assert body["base_preset"] == "gkd" and "preset" not in body["base"]
    assert body["base"]["train"] == {"max_steps": 1} and body["seeds"] == 2
    assert "max_eval_examples" not in body["base"].get("data", {})  # empty: every item
    small = sweep_body(
        "abl", "gkd", "builtin:tiny-random", "scienceqa", 1, ["ema"], [], "full", 1, eval_items=3
    )
    assert small["base"]["data"]["max_eval_examples"] == 3
