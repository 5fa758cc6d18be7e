"""UI form values <-> RunConfig payloads. Pure functions: tested without Gradio."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from unisd_core.config import RunConfig


def config_from_form(
    preset: str, model: str, benchmark: str, max_steps: float | None
) -> dict[str, Any]:
    """The request body for `POST /runs`: the preset plus the fields the form sets."""
    payload: dict[str, Any] = {
        "preset": preset,
        "model": {"name_or_path": model},
        "data": {"benchmark": benchmark},
    }
    if max_steps is not None:
        payload["train"] = {"max_steps": int(max_steps)}
    return payload


def validation_message(payload: dict[str, Any]) -> str | None:
    """None when the payload is a valid RunConfig, else a readable list of field errors."""
    try:
        RunConfig.model_validate(payload)
    except ValidationError as exc:
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
    return None
