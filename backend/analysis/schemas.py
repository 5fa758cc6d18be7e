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
    paper_table: PaperTableOut | None = Field(
        None, description="Template sweeps (paper-table): the paper's table layout."
    )


class CellScore(BaseModel):
    method: str
    benchmark: str = Field(description="An evaluation benchmark, or `overall`.")
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int = Field(description="Seeds with a value.")


class Gain(BaseModel):
    method: str
    benchmark: str
    gain: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    interval: str = Field(description="paired (across seeds), welch, one-sample or none.")


class RetentionScore(BaseModel):
    method: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


class FindingOut(BaseModel):
    claim: str
    verdict: str = Field(description="holds, contradicted or unresolved.")
    evidence: list[str]


class PaperTableOut(BaseModel):
    methods: list[str] = Field(description="Rows, in the paper's order.")
    columns: list[str] = Field(description="Evaluation benchmarks, then `overall`.")
    ood: list[str] = Field(description="Columns that are out-of-distribution evaluations.")
    scores: list[CellScore]
    gains: list[Gain] = Field(description="Each method minus the base, per column.")
    retention: list[RetentionScore] = Field(
        description="Retention PPL per method (lower: less drift)."
    )
    findings: list[FindingOut]
    notes: list[str] = Field(default_factory=list)


class TableRow(BaseModel):
    run_id: int
    method: str
    train_benchmark: str
    benchmark: str
    seed: int
    score: float | None
    retention_ppl: float | None
    gold_ppl: float | None
    n: int | None


class SweepTable(BaseModel):
    """A template sweep's evaluations as the analysis table (one row per run x benchmark)."""

    sweep_id: int
    template: str | None
    template_options: dict[str, Any] | None
    rows: list[TableRow]


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
