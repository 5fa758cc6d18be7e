"""UI form values <-> RunConfig payloads. Pure functions: tested without Gradio.

The New-run form is generated from `RunConfig`'s fields: every leaf field becomes one input,
keyed by its dotted path (`train.max_steps`), with the field's description as its tooltip. A field
added to the config appears in the form without UI code changes.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from unisd_core.config import COMPONENTS, RunConfig
from unisd_core.presets import PRESETS

Kind = Literal["bool", "choice", "multichoice", "int", "float", "text", "list"]

#: Top-level fields the form does not render as inputs (the preset picker sets `preset`).
NOT_IN_FORM = ("preset",)
#: What a preset leaves alone when it fills the form: the user's model, data and hardware.
KEPT_ON_PRESET = ("name", "model.name_or_path", "model.revision", "data.", "resources.")


@dataclass(frozen=True)
class FieldSpec:
    """One input of the form, derived from a config field."""

    path: str
    kind: Kind
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    optional: bool = False

    @property
    def block(self) -> str:
        return self.path.split(".", 1)[0] if "." in self.path else "run"

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _classify(annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return "bool", ()
    if annotation is int:
        return "int", ()
    if annotation is float:
        return "float", ()
    if origin is Literal:
        return "choice", tuple(str(a) for a in typing.get_args(annotation))
    if origin in (tuple, list):
        inner = typing.get_args(annotation)[0] if typing.get_args(annotation) else str
        if typing.get_origin(inner) is Literal:
            return "multichoice", tuple(str(a) for a in typing.get_args(inner))
        return "list", ()
    return "text", ()


def field_specs(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[FieldSpec]:
    """Every leaf field of `model`, depth first, in declaration order."""
    specs: list[FieldSpec] = []
    for name, info in model.model_fields.items():
        if not prefix and name in NOT_IN_FORM:
            continue
        annotation, optional = _strip_optional(info.annotation)
        path = f"{prefix}{name}"
        if _is_model(annotation):
            specs.extend(field_specs(annotation, f"{path}."))
            continue
        kind, choices = _classify(annotation)
        default = info.get_default(call_default_factory=True)
        specs.append(FieldSpec(path, kind, default, info.description or "", choices, optional))
    return specs


SPECS: tuple[FieldSpec, ...] = tuple(field_specs())
SPEC_BY_PATH: dict[str, FieldSpec] = {spec.path: spec for spec in SPECS}
PATHS: tuple[str, ...] = tuple(spec.path for spec in SPECS)


def block_description(block: str) -> str:
    info = RunConfig.model_fields.get(block)
    return (info.description or "") if info else ""


def blocks() -> list[str]:
    """Top-level groups of the form, in declaration order ('run' holds the loose fields)."""
    seen: list[str] = []
    for spec in SPECS:
        if spec.block not in seen:
            seen.append(spec.block)
    return seen


# --- values <-> config -------------------------------------------------------------------------


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    cursor: Any = data
    for key in path.split("."):
        if not isinstance(cursor, Mapping) or key not in cursor:
            return None
        cursor = cursor[key]
    return cursor


def to_ui(spec: FieldSpec, value: Any) -> Any:
    """A config value as its input shows it."""
    if spec.kind == "list":
        return ", ".join(str(v) for v in value or ())
    if spec.kind == "multichoice":
        return [str(v) for v in value or ()]
    if spec.kind == "text":
        return "" if value is None else str(value)
    if spec.kind == "choice":
        return None if value is None else str(value)
    if spec.optional and spec.kind in ("int", "float"):
        return "" if value is None else str(value)
    return value


def from_ui(spec: FieldSpec, value: Any) -> Any:
    """An input's value as the config wants it (invalid values pass through for validation)."""
    if spec.kind == "list":
        text = value if isinstance(value, str) else ", ".join(value or ())
        return [part.strip() for part in text.split(",") if part.strip()]
    if spec.kind == "multichoice":
        return list(value or [])
    if spec.kind == "text":
        text = "" if value is None else str(value).strip()
        return None if (spec.optional and not text) else text
    if spec.kind in ("int", "float"):
        if isinstance(value, str):
            value = _number(value)
        if value is None or value == "":
            return None
        if spec.kind == "int" and isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if spec.kind == "bool":
        return bool(value)
    return value


def _number(text: str) -> Any:
    """'3' -> 3, '1e-4' -> 0.0001, '' -> None; other text is left for validation to reject."""
    text = text.strip()
    if not text:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def values_from_config(config: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Input values (path -> UI value) showing a config."""
    data = config.model_dump(mode="json") if isinstance(config, RunConfig) else config
    return {spec.path: to_ui(spec, _lookup(data, spec.path)) for spec in SPECS}


def values_from_preset(name: str, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The preset's values; the user's model, data and resources in `current` are kept."""
    values = values_from_config(PRESETS[name])
    for path in list(values):
        if (
            current
            and path in current
            and any(
                path == kept or (kept.endswith(".") and path.startswith(kept))
                for kept in KEPT_ON_PRESET
            )
        ):
            values[path] = current[path]
    return values


def config_from_values(values: Mapping[str, Any], preset: str | None = None) -> dict[str, Any]:
    """The request body for `POST /runs`: every form field, nested, plus the preset's name."""
    payload: dict[str, Any] = {}
    for path, value in values.items():
        spec = SPEC_BY_PATH.get(path)
        if spec is None:
            continue
        cursor = payload
        *parents, leaf = path.split(".")
        for key in parents:
            cursor = cursor.setdefault(key, {})
        cursor[leaf] = from_ui(spec, value)
    if preset:
        payload["preset"] = preset
    return payload


def config_from_form(
    preset: str, model: str, benchmark: str, max_steps: float | None
) -> dict[str, Any]:
    """A minimal request body: the preset plus a model, a benchmark and a step budget."""
    payload: dict[str, Any] = {
        "preset": preset,
        "model": {"name_or_path": model},
        "data": {"benchmark": benchmark},
    }
    if max_steps is not None:
        payload["train"] = {"max_steps": int(max_steps)}
    return payload


def field_errors(payload: Mapping[str, Any]) -> dict[str, str]:
    """Path -> message for every problem of the payload; empty when it is a valid RunConfig."""
    try:
        RunConfig.model_validate(dict(payload))
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"]) or "config"
            errors.setdefault(path, err["msg"].removeprefix("Value error, "))
        return errors
    return {}


def validation_message(payload: Mapping[str, Any]) -> str | None:
    """None when the payload is a valid RunConfig, else a readable list of field errors."""
    errors = field_errors(payload)
    return "; ".join(f"{path}: {msg}" for path, msg in errors.items()) or None


def errors_markdown(errors: Mapping[str, str]) -> str:
    if not errors:
        return "**Config is valid.**"
    lines = [f"- **{path}**: {message}" for path, message in errors.items()]
    return "**Fix before submitting:**\n" + "\n".join(lines)


# --- YAML --------------------------------------------------------------------------------------


def yaml_from_values(values: Mapping[str, Any], preset: str | None = None) -> str:
    """The resolved config as YAML (or the raw form, commented, while it is invalid)."""
    payload = config_from_values(values, preset)
    try:
        return RunConfig.model_validate(payload).to_yaml()
    except ValidationError:
        raw = yaml.safe_dump(payload, sort_keys=False)
        return "# invalid: fix the fields listed above\n" + raw


def values_from_yaml(text: str) -> tuple[dict[str, Any] | None, str | None, str]:
    """(values, preset, error): parse edited YAML into form values, or explain why not."""
    try:
        config = RunConfig.from_yaml(text)
    except ValidationError as exc:
        message = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        return None, None, message
    except (yaml.YAMLError, ValueError) as exc:
        return None, None, f"not valid YAML: {exc}"
    return values_from_config(config), config.preset, ""


# --- estimates ---------------------------------------------------------------------------------

#: Parameters of the built-in models.
KNOWN_PARAMS = {"builtin:tiny-random": 3.3e6, "builtin:smollm2-135m-instruct": 134.5e6}
#: CPU seconds per prompt at batch 4 x 128 tokens (measured, environment.md), per parameter.
_CPU_S_PER_PARAM_PROMPT = 7.0 / 4 / 134.5e6
_GPU_SPEEDUP = 40.0


def model_params(name: str) -> float | None:
    """Parameter count from the built-in table or an id like `Qwen2.5-0.5B` / `Llama-3-8b`."""
    if name in KNOWN_PARAMS:
        return KNOWN_PARAMS[name]
    match = re.search(r"(\d+(?:\.\d+)?)\s*([bBmM])(?![a-zA-Z])", name.rsplit("/", 1)[-1])
    if not match:
        return None
    scale = 1e9 if match.group(2).lower() == "b" else 1e6
    return float(match.group(1)) * scale


@dataclass(frozen=True)
class Estimate:
    params: float | None
    minutes: float | None
    memory_gb: float | None

    def markdown(self) -> str:
        if self.params is None or self.minutes is None or self.memory_gb is None:
            return "Estimate: unknown model size (give an id like `org/name-0.5B`)."
        duration = f"{self.minutes * 60:,.0f} s" if self.minutes < 1 else f"{self.minutes:,.1f} min"
        return (
            f"**Estimate** (rough): {self.params / 1e6:,.1f} M params · "
            f"~{duration} · ~{self.memory_gb:,.1f} GB peak memory"
        )


def estimate(config: Mapping[str, Any]) -> Estimate:
    """Rough wall time and peak memory of a run from its (resolved) config."""
    params = model_params(str(_lookup(config, "model.name_or_path") or ""))
    if params is None:
        return Estimate(None, None, None)
    steps = _lookup(config, "train.max_steps") or 100
    batch = _lookup(config, "train.batch_size") or 4
    lora = bool(_lookup(config, "model.lora.enabled"))
    teachers = 1 + int(bool(_lookup(config, "agreement.enabled"))) * int(
        _lookup(config, "agreement.num_auxiliary_contexts") or 0
    )
    objective = _lookup(config, "objective")
    passes = 1.0 if objective in ("sft", "ssd") else 2.0 + 0.5 * teachers
    seconds = steps * batch * params * _CPU_S_PER_PARAM_PROMPT * passes
    if _lookup(config, "resources.device") == "cuda":
        seconds /= _GPU_SPEEDUP * (_lookup(config, "resources.gpus") or 1)
    dtype_bytes = 2 if _lookup(config, "model.dtype") in ("bfloat16", "float16") else 4
    trainable = 0.02 * params if lora else params
    ema_copy = params if _lookup(config, "ema.enabled") and not lora else 0
    memory = (params + ema_copy) * dtype_bytes + trainable * 12 + 0.5e9
    if objective == "none":
        seconds = 0.0
    return Estimate(params, seconds / 60, memory / 1e9)


# --- ablation designs --------------------------------------------------------------------------

DESIGNS = ("full", "fractional", "one_at_a_time")


def parse_levels(text: str) -> list[Any]:
    """'0.01, 0.1' -> [0.01, 0.1] (YAML scalars, so numbers and booleans get their types)."""
    levels: list[Any] = []
    for part in text.split(","):
        if part.strip():
            value = yaml.safe_load(part.strip())
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = float(value)
            levels.append(value)
    return levels


def ablation_factors(
    components: Iterable[str], extra: Sequence[tuple[str, str]] = ()
) -> dict[str, list[Any]]:
    """Factor path -> its two levels: components are off/on, extras are `(path, 'a, b')`."""
    factors: dict[str, list[Any]] = {f"{c}.enabled": [False, True] for c in components}
    for path, levels in extra:
        if path and levels.strip():
            factors[path] = parse_levels(levels)
    return factors


def design_rows(factors: Mapping[str, Sequence[Any]], design: str) -> list[dict[str, Any]]:
    """The configurations of a two-level design (seeds not included)."""
    names = list(factors)
    if not names:
        return []
    if design == "one_at_a_time":
        low = {name: factors[name][0] for name in names}
        return [dict(low)] + [{**low, name: factors[name][-1]} for name in names]
    if design == "fractional" and len(names) >= 3:
        # 2^(k-1): the last factor's level is the product of the others' (+-1 coding).
        rows = []
        for signs in itertools.product((-1, 1), repeat=len(names) - 1):
            last = 1
            for sign in signs:
                last *= sign
            coded = (*signs, last)
            rows.append(
                {n: factors[n][0 if s < 0 else -1] for n, s in zip(names, coded, strict=False)}
            )
        return rows
    return [
        dict(zip(names, combo, strict=False))
        for combo in itertools.product(*(factors[n] for n in names))
    ]


def design_matrix(
    factors: Mapping[str, Sequence[Any]], design: str, seeds: int
) -> list[dict[str, Any]]:
    """One row per run: configuration index, factor levels and seed."""
    rows = []
    for index, row in enumerate(design_rows(factors, design), start=1):
        for seed in range(max(1, seeds)):
            rows.append({"config": index, **row, "seed": seed})
    return rows


def with_overrides(payload: Mapping[str, Any], assignments: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a nested payload with dotted-path assignments applied."""
    result: dict[str, Any] = _deep_copy(payload)
    for path, value in assignments.items():
        cursor = result
        *parents, leaf = path.split(".")
        for key in parents:
            cursor = cursor.setdefault(key, {})
        cursor[leaf] = value
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def components_on(config: Mapping[str, Any]) -> list[str]:
    return [c for c in COMPONENTS if _lookup(config, f"{c}.enabled")]
