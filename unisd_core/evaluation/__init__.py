"""Scorers and the evaluator. Scorers (mcqa, numeric, tooluse, code, sandbox) are torch-free;
`evaluate` and the retention metrics need torch and are imported lazily from here."""

from __future__ import annotations

from typing import Any

__all__ = ["EvalReport", "ItemResult", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from unisd_core.evaluation import evaluator

        return getattr(evaluator, name)
    raise AttributeError(name)
