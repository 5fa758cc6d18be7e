"""How the trainer talks to its host: a metric sink and a stop signal.

The trainer knows nothing about databases or queues. The CLI gives it a JSONL sink, the worker a
database sink, tests a list sink; the stop signal is polled between optimizer steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol


class MetricSink(Protocol):
    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        """Receive the namespaced metrics of one optimizer step (e.g. `loss/total`)."""


class StopSignal(Protocol):
    def __call__(self) -> bool:
        """True when the run should stop at the next step boundary."""


def never_stop() -> bool:
    return False


class ListSink:
    """Keeps every point in memory: `points[key] == [(step, value), ...]`."""

    def __init__(self) -> None:
        self.points: dict[str, list[tuple[int, float]]] = {}

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.points.setdefault(key, []).append((step, float(value)))


class JsonlSink:
    """One JSON line per step: `{"step": 3, "time": ..., "metrics": {...}}`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        line = json.dumps({"step": step, "time": time.time(), "metrics": dict(metrics)})
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
