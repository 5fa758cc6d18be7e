"""Request and response models of the analysis endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class Effect(BaseModel):
    term: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    aliased_with: str = ""


class ConfigSummary(BaseModel):
    label: str
    n: int
    mean: float | None
    sd: float | None


class AnalysisOut(BaseModel):
    response: str = Field(description="What was analysed: eval/<benchmark>/<metric> or a key.")
    factors: list[str]
    n_runs: int = Field(description="Runs with a value of the response.")
    n_missing: int = Field(description="Runs without one yet (unfinished, failed, not evaluated).")
    effects: list[Effect]
    configs: list[ConfigSummary]
    paired: list[dict[str, Any]] = Field(
        default_factory=list, description="Each configuration vs the base, paired by seed (Holm)."
    )
    note: str | None = None


RunIdItem = Annotated[int, Field(ge=1, le=2**31 - 1)]
FactorName = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
]


class RunSetAnalysis(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_ids: list[RunIdItem] = Field(min_length=2, max_length=2000)
    factors: list[FactorName] = Field(
        min_length=1,
        max_length=10,
        description="Components (agreement, ...) or dotted config paths (train.lr).",
    )
    response: str | None = Field(None, max_length=300)
