"""The one record type every benchmark loader produces."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TaskType = Literal["mcqa", "code", "tooluse", "math"]


class Example(BaseModel):
    """A benchmark item, source-independent: bundled, local and hf give equal Examples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    benchmark: str
    task: TaskType
    question: str
    context: str = ""
    options: tuple[str, ...] = ()
    answer: str = Field(description="Gold answer: an option letter, code, a call or a number.")
    explanation: str = ""
    tests: tuple[str, ...] = Field(
        default=(), description="Code: assert statements, or a test program (HumanEval)."
    )
    test_setup: str = Field(default="", description="Code: imports/setup the tests need.")
    entry_point: str | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Source details: split, option order, data provenance notes, subject, ...",
    )


class DataError(ValueError):
    """A data problem a user can fix: missing file, unknown benchmark, malformed record."""
