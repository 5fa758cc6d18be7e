"""Request and response models of sweeps (ablation designs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from unisd_core.config import field_error
from unisd_core.templates import PaperTableOptions

COMPONENTS = ("agreement", "ema", "contrastive", "feature_matching", "clipping")
PATH_PATTERN = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$"
Level = bool | int | float | str


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactorSpec(Strict):
    """A component (`agreement`, ...: off/on) or a config parameter (`train.lr`) with levels."""

    name: str = Field(
        min_length=1,
        max_length=100,
        description="A component name, or a dotted config path such as agreement.gamma_agreement.",
    )
    levels: list[Level] | None = Field(
        None,
        min_length=2,
        max_length=10,
        description="Values to try; components default to [false, true]. First = base level.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        import re

        if value in COMPONENTS or re.fullmatch(PATH_PATTERN, value):
            return value
        raise ValueError(f"must be one of {COMPONENTS} or a dotted config path like train.lr")

    @model_validator(mode="after")
    def _levels(self) -> FactorSpec:
        if self.levels is None:
            if self.name not in COMPONENTS:
                raise ValueError("levels are required for a config parameter")
        elif len({repr(v) for v in self.levels}) < len(self.levels):
            raise ValueError("levels must be distinct")
        return self

    @property
    def path(self) -> str:
        return f"{self.name}.enabled" if self.name in COMPONENTS else self.name

    @property
    def values(self) -> list[Level]:
        return list(self.levels) if self.levels is not None else [False, True]


class SweepCreate(Strict):
    name: str | None = Field(None, max_length=200)
    base_preset: str | None = Field(
        None, max_length=64, description="Preset every run starts from."
    )
    base: dict[str, Any] = Field(
        default_factory=dict, description="Config values shared by every run (nested mapping)."
    )
    factors: list[FactorSpec] = Field(
        default_factory=list, max_length=10, description="Factors of a design (not templates)."
    )
    design: Literal["full", "fractional", "one_at_a_time"] = "full"
    template: Literal["paper-table"] | None = Field(
        None,
        description=(
            "A built-in template instead of factors: paper-table = the paper's methods x "
            "training benchmarks x seeds, each run evaluated in- and out-of-distribution."
        ),
    )
    template_options: PaperTableOptions | None = Field(
        None, description="Options of the template (model, budget, seeds, methods, benchmarks)."
    )
    resolution: Literal[3, 4, 5] | None = Field(
        None, description="Fractional designs: the resolution (default 4)."
    )
    seeds: int | list[int] = Field(
        1, description="A count (seeds 0..n-1) or an explicit list of seeds."
    )
    experiment_id: int | None = Field(None, ge=1, le=2**31 - 1)
    tags: list[str] = Field(default_factory=list, max_length=32)
    hours_per_run: float | None = Field(
        None, gt=0, le=10_000, description="Override the compute estimate of one run (GPU-hours)."
    )

    @model_validator(mode="after")
    def _factors_or_template(self) -> SweepCreate:
        if self.template is None:
            if self.template_options is not None:
                raise field_error(
                    ("template_options",), "needs a template (template: paper-table)", None
                )
            if not self.factors:
                raise field_error(("factors",), "give at least one factor, or a template", [])
            return self
        given = self.model_fields_set
        for name in ("factors", "base_preset", "base", "resolution", "seeds"):
            if name in given and getattr(self, name):
                raise field_error(
                    (name,), "does not apply to a template; set template_options instead", None
                )
        if self.template_options is None:
            self.template_options = PaperTableOptions()
        return self

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int):
            if not 1 <= value <= 50:
                raise ValueError("a seed count must be between 1 and 50")
        else:
            if not 1 <= len(value) <= 50:
                raise ValueError("give 1 to 50 seeds")
            if len(set(value)) < len(value):
                raise ValueError("seeds must be distinct")
            if any(not 0 <= s <= 2**32 - 1 for s in value):
                raise ValueError("seeds must be between 0 and 2^32-1")
        return value

    @field_validator("factors")
    @classmethod
    def _unique(cls, value: list[FactorSpec]) -> list[FactorSpec]:
        paths = [f.path for f in value]
        if len(set(paths)) < len(paths):
            raise ValueError("factors must be distinct")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        from backend.runs.schemas import check_tags

        return check_tags(value)

    @property
    def seed_list(self) -> list[int]:
        if self.template_options is not None:
            return self.template_options.seed_list
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


class DesignPoint(BaseModel):
    label: str
    levels: dict[str, Any]


class SweepPreview(BaseModel):
    design: str
    resolution: int | None
    factors: list[str]
    seeds: list[int]
    points: list[DesignPoint]
    run_count: int
    estimated_gpu_hours: float
    hours_per_run: float
    estimate_basis: str
    aliases: dict[str, list[str]] = Field(
        default_factory=dict, description="Effects the design cannot tell apart (fractions)."
    )


class SweepProgress(BaseModel):
    total: int
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    fraction_done: float


class SweepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    status: str
    design: str
    resolution: int | None
    template: str | None = None
    template_options: dict[str, Any] | None = None
    base_preset: str | None
    factors: list[Any]
    seeds: list[Any]
    design_table: list[Any]
    aliases: list[Any]
    run_count: int
    estimated_gpu_hours: float
    experiment_id: int | None
    created_by: int | None
    created_at: datetime
    cancelled_at: datetime | None
    progress: SweepProgress
    run_ids: list[int]


class SweepList(BaseModel):
    items: list[SweepOut]
    total: int
    limit: int
    offset: int
