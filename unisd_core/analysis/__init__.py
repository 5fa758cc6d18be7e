"""Analysis engine: from a table of runs to evidence about self-distillation components.

Pure numpy/scipy/pandas (no torch, no other package of this repository), so the API, the UI and
the CLI can import it cheaply. The stable entry point is :func:`factorial_effects`; the rest is
grouped by what it answers:

- designs: which runs to queue (full, fractional, one-at-a-time, the paper's layout).
- effects: main effects and two-way interactions with confidence intervals and aliasing.
- paired / power: is a difference between two configurations real, and how many seeds are needed.
- summaries: gains over the base, the retention/accuracy frontier, mean +/- CI curves.
- export: CSV and LaTeX (booktabs) tables.
"""

from __future__ import annotations

from unisd_core.analysis.designs import (
    Design,
    estimate_run_count,
    fractional_factorial,
    full_factorial,
    one_at_a_time,
    paper_layout,
)
from unisd_core.analysis.effects import (
    EffectsResult,
    effects_by_benchmark,
    estimate_effects,
    factorial_effects,
)
from unisd_core.analysis.errors import AnalysisError
from unisd_core.analysis.export import effects_for_paper, to_csv, to_latex, write_table
from unisd_core.analysis.paired import (
    PairedResult,
    compare_configurations,
    holm,
    paired_comparisons,
    paired_test,
    paired_tests,
    power_summary,
)
from unisd_core.analysis.power import minimum_detectable_effect, paired_power, seeds_needed
from unisd_core.analysis.runs import config_labels, overall_scores
from unisd_core.analysis.summaries import (
    as_heatmap,
    curves_mean_ci,
    gain_over_base,
    pareto_optimal,
    retention_frontier,
)

__all__ = [
    "AnalysisError",
    "Design",
    "EffectsResult",
    "PairedResult",
    "as_heatmap",
    "compare_configurations",
    "config_labels",
    "curves_mean_ci",
    "effects_by_benchmark",
    "effects_for_paper",
    "estimate_effects",
    "estimate_run_count",
    "factorial_effects",
    "fractional_factorial",
    "full_factorial",
    "gain_over_base",
    "holm",
    "minimum_detectable_effect",
    "one_at_a_time",
    "overall_scores",
    "paired_comparisons",
    "paired_power",
    "paired_test",
    "paired_tests",
    "paper_layout",
    "pareto_optimal",
    "power_summary",
    "retention_frontier",
    "seeds_needed",
    "to_csv",
    "to_latex",
    "write_table",
]
