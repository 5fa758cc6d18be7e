"""Test factories: rows built through the same code paths the API and workers use."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from backend.db.models import Run
from backend.runs.service import run_from_config
from unisd_core.config import RunConfig


def make_run(session: Session, **overrides: Any) -> Run:
    """A queued run of the default config; `overrides` set columns after creation."""
    config = overrides.pop("config", None) or RunConfig.model_validate({"train": {"max_steps": 3}})
    run = run_from_config(config, default_queue="cpu")
    for name, value in overrides.items():
        setattr(run, name, value)
    session.add(run)
    session.flush()
    return run
