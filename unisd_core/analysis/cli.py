"""``unisd analyze``: read a table of runs, write effects, comparisons and summaries to a folder.

Table format (CSV, JSONL, JSON records or Parquet): one row per run x benchmark.

===================  ==========================================================================
column               meaning
===================  ==========================================================================
component flags      one boolean column per factor (``agreement``, ``ema``, ``contrastive``,
                     ``feature_matching``, ``clipping``, ...): True/False, or the words
                     on/off, yes/no, enabled/disabled. Detected automatically.
``param.<name>``     a parameter of the configuration (``param.gamma_agreement``). It becomes a
                     factor only when named with ``factors`` (and then must have two values).
``seed``             the training seed; runs with the same seed are paired across configurations.
``benchmark``        the evaluation benchmark (absent: the table is one benchmark).
``run_id``           optional run identifier; other text columns (``name``, ``preset``, ...) are
                     descriptions and are ignored.
metrics              every other numeric column (``accuracy``, ``pass_at_1``, ``retention_ppl``).
                     A retention column (``retention_ppl``, ``ppl_ret`` or ``retention/ppl``) is
                     also paired with each metric for the retention/accuracy frontier.
===================  ==========================================================================

A long form is accepted too: columns ``metric`` and ``value`` (one row per run x benchmark x
metric, like the API's evaluation rows) are pivoted to one column per metric.

Outputs in ``output``: ``effects.csv`` (per benchmark and overall, every response),
``comparisons.csv`` (each configuration against the base, paired over seeds, Holm-corrected),
``power.csv``, ``gains.csv`` (component x benchmark heatmap data), ``frontier.csv``, a LaTeX
(booktabs) ``.tex`` next to each per response, and ``summary.json`` listing what was done, what
was skipped and why.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unisd_core.analysis.coding import order_levels, require_columns
from unisd_core.analysis.effects import effects_by_benchmark
from unisd_core.analysis.errors import AnalysisError
from unisd_core.analysis.export import effects_for_paper, to_csv, to_latex
from unisd_core.analysis.paired import paired_comparisons, power_summary
from unisd_core.analysis.runs import OVERALL, config_labels
from unisd_core.analysis.summaries import as_heatmap, gain_over_base, retention_frontier

RESERVED = frozenset(
    {
        "run_id",
        "run",
        "id",
        "name",
        "preset",
        "status",
        "seed",
        "benchmark",
        "step",
        "config",
        "label",
        "experiment",
        "experiment_id",
        "sweep_id",
        "attempt",
        "notes",
        "tags",
    }
)
RETENTION_NAMES = ("retention_ppl", "ppl_ret", "retention/ppl", "retention")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq")
_LABEL = "config"


def analyze(
    source: Path,
    output: Path,
    response: str | None = None,
    *,
    factors: Sequence[str] | None = None,
    seed: str | None = "seed",
    benchmark: str | None = "benchmark",
    retention: str | None = None,
    reference: str | None = None,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    boot_seed: int = 0,
) -> dict[str, Any]:
    """Analyse the runs in ``source`` and write the results into ``output``; return the summary.

    ``response`` picks one metric column (default: every metric column). ``factors`` overrides
    the detected component flags. ``reference`` is the configuration label compared against
    (default ``base``, i.e. every component off). Parts that the table cannot support (e.g.
    paired tests with one seed) are skipped with a note in ``summary.json``.
    """
    table = read_runs(source)
    return analyze_table(
        table,
        output,
        response,
        factors=factors,
        seed=seed,
        benchmark=benchmark,
        retention=retention,
        reference=reference,
        confidence=confidence,
        n_boot=n_boot,
        boot_seed=boot_seed,
        source=str(source),
    )


def analyze_table(
    table: pd.DataFrame,
    output: Path,
    response: str | None = None,
    *,
    factors: Sequence[str] | None = None,
    seed: str | None = "seed",
    benchmark: str | None = "benchmark",
    retention: str | None = None,
    reference: str | None = None,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    boot_seed: int = 0,
    source: str | None = None,
) -> dict[str, Any]:
    """:func:`analyze` on a table already in memory (what the API calls for a sweep)."""
    table = normalise_table(table)
    if table.empty:
        raise AnalysisError("the table of runs is empty")
    seed = seed if seed is not None and seed in table.columns else None
    benchmark = benchmark if benchmark is not None and benchmark in table.columns else None
    factor_names = list(factors) if factors is not None else detect_factors(table)
    if not factor_names:
        raise AnalysisError(
            "no factor columns found: add boolean component columns (e.g. agreement, ema) or "
            "name the factors explicitly"
        )
    require_columns(table, factor_names, what="factor")
    retention = retention if retention is not None else _detect_retention(table)
    responses = [response] if response is not None else detect_metrics(table, factor_names)
    if not responses:
        raise AnalysisError("no numeric metric columns found to analyse")
    require_columns(table, responses, what="response")

    output.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    written: list[Path] = []
    table = table.copy()
    table[_LABEL] = config_labels(table, factor_names)
    reference = reference if reference is not None else "base"
    has_reference = bool((table[_LABEL] == reference).any())
    n_seeds = int(table[seed].nunique()) if seed else 0

    effects, comparisons, powers, gains, frontiers = [], [], [], [], []
    analysed: list[str] = []
    top: dict[str, list[dict[str, Any]]] = {}
    for name in responses:
        try:
            _check_response_usable(table, name, explicit=response is not None)
        except AnalysisError as exc:
            if response is not None:
                raise
            notes.append(f"{name}: skipped: {exc}")
            continue
        analysed.append(name)
        if benchmark:
            result = effects_by_benchmark(
                table,
                factors=factor_names,
                response=name,
                benchmark=benchmark,
                seed=seed,
                # Without seeds, replicated configurations are told apart by their run id.
                run=["run_id"] if seed is None and "run_id" in table.columns else None,
                confidence=confidence,
            )
        else:
            result = _single(table, factor_names, name, seed, confidence)
        result.insert(0, "response", name)
        effects.append(result)
        top[name] = _top_effects(result)
        written += _write_tex(
            effects_for_paper(result),
            output / f"effects_{_slug(name)}.tex",
            f"Main effects and two-way interactions on {name} ({confidence:.0%} CI)",
        )

        if not has_reference:
            notes.append(f"{name}: no {reference!r} configuration, so no comparisons or gains.")
        else:
            if seed and n_seeds >= 2:
                compared = paired_comparisons(
                    table,
                    response=name,
                    by=_LABEL,
                    reference=reference,
                    seed=seed,
                    benchmark=benchmark,
                    confidence=confidence,
                    n_boot=n_boot,
                    boot_seed=boot_seed,
                )
                compared.insert(0, "response", name)
                comparisons.append(compared)
                power = power_summary(compared, alpha=round(1 - confidence, 12))
                power.insert(0, "response", name)
                powers.append(power)
                written += _write_tex(
                    compared[
                        [
                            "benchmark",
                            "config",
                            "mean_diff",
                            "ci_low",
                            "ci_high",
                            "t_pvalue_holm",
                            "wilcoxon_pvalue_holm",
                        ]
                    ],
                    output / f"comparisons_{_slug(name)}.tex",
                    f"Paired differences on {name} against {reference} (Holm-adjusted p-values)",
                )
            else:
                notes.append(
                    f"{name}: paired tests skipped: they need a seed column with at least two "
                    f"seeds (found {n_seeds})."
                )
            gain = gain_over_base(
                table,
                response=name,
                by=_LABEL,
                base=reference,
                seed=seed,
                benchmark=benchmark,
                confidence=confidence,
            )
            gain.insert(0, "response", name)
            gains.append(gain)
            heat = as_heatmap(gain[gain["config"].isin(_paper_rows(gain, factor_names))])
            heat = heat.reset_index()
            written += _write_tex(
                heat, output / f"gains_{_slug(name)}.tex", f"Gain in {name} over {reference}"
            )
        if retention is not None and name != retention:
            frontier = retention_frontier(
                table, accuracy=name, retention=retention, by=_LABEL, benchmark=benchmark
            )
            frontier.insert(0, "response", name)
            frontiers.append(frontier)
            written += _write_tex(
                frontier,
                output / f"frontier_{_slug(name)}.tex",
                f"{name} against retention ({retention}); pareto marks the optimal set",
            )

    for stem, frames in (
        ("effects", effects),
        ("comparisons", comparisons),
        ("power", powers),
        ("gains", gains),
        ("frontier", frontiers),
    ):
        if frames:
            written.append(to_csv(pd.concat(frames, ignore_index=True), output / f"{stem}.csv"))
    for result in effects:
        for note in pd.unique(result["note"]):
            if note and note not in notes:
                notes.append(str(note))

    summary: dict[str, Any] = {
        "source": source,
        "rows": len(table),
        "factors": factor_names,
        "responses": analysed,
        "seed_column": seed,
        "n_seeds": n_seeds,
        "benchmarks": sorted(map(str, table[benchmark].unique())) if benchmark else [],
        "reference": reference if has_reference else None,
        "retention": retention,
        "configurations": sorted(map(str, table[_LABEL].unique())),
        "confidence": confidence,
        "top_effects": top,
        "notes": notes,
        "files": [*sorted(p.name for p in written), "summary.json"],
    }
    summary = _json_safe(summary)
    (output / "summary.json").write_text(
        json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return summary


# ----------------------------------------------------------------------------- reading


def read_runs(source: Path) -> pd.DataFrame:
    """Read a table of runs from a file, or from ``runs.<ext>`` inside a directory."""
    path = Path(source)
    if path.is_dir():
        found = [path / f"runs{s}" for s in TABLE_SUFFIXES if (path / f"runs{s}").is_file()]
        if not found:
            raise AnalysisError(f"{path} has no runs.csv, runs.jsonl or runs.parquet")
        path = found[0]
    if not path.is_file():
        raise AnalysisError(f"no such table of runs: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".tsv":
            return pd.read_csv(path, sep="\t")
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if suffix == ".json":
            return pd.read_json(path, orient="records")
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except ImportError as error:
        raise AnalysisError(
            f"reading {path.name} needs an optional library ({error}); install pyarrow for Parquet"
        ) from error
    except ValueError as error:
        raise AnalysisError(f"could not read {path.name}: {error}") from error
    raise AnalysisError(f"unknown table format {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")


def normalise_table(table: pd.DataFrame) -> pd.DataFrame:
    """Pivot the long form (``metric``/``value`` columns) to one column per metric."""
    if {"metric", "value"} <= set(table.columns):
        keys = [c for c in table.columns if c not in ("metric", "value")]
        duplicated = table.duplicated([*keys, "metric"])
        if duplicated.any():
            raise AnalysisError(
                "long-form table has several values for the same run, benchmark and metric"
            )
        wide = table.pivot_table(
            index=keys, columns="metric", values="value", aggfunc="first", dropna=False
        )
        wide.columns = [str(c) for c in wide.columns]
        return wide.reset_index()
    return table


def detect_factors(table: pd.DataFrame) -> list[str]:
    """Columns that read as on/off switches: boolean dtype, or only on/off words as text."""
    found = []
    for column in table.columns:
        if column in RESERVED or str(column).startswith("param."):
            continue
        series = table[column]
        if series.dtype == bool:
            found.append(str(column))
        elif (
            series.dtype == object or pd.api.types.is_string_dtype(series)
        ) and series.notna().all():
            levels = pd.unique(series)
            if len(levels) == 2 and _is_switch_pair(levels[0], levels[1]):
                found.append(str(column))
    return found


def detect_metrics(table: pd.DataFrame, factors: Sequence[str]) -> list[str]:
    """Numeric columns that are neither factors, parameters nor bookkeeping."""
    return [
        str(c)
        for c in table.columns
        if c not in RESERVED
        and c not in factors
        and not str(c).startswith("param.")
        and pd.api.types.is_numeric_dtype(table[c])
        and table[c].dtype != bool
    ]


# ----------------------------------------------------------------------------- helpers


def _is_switch_pair(first: Any, second: Any) -> bool:
    low, high = order_levels(first, second)
    words = {str(low).strip().lower(), str(high).strip().lower()}
    return words in (
        {"false", "true"},
        {"off", "on"},
        {"no", "yes"},
        {"disabled", "enabled"},
    )


def _detect_retention(table: pd.DataFrame) -> str | None:
    lowered = {str(c).lower(): str(c) for c in table.columns}
    for name in RETENTION_NAMES:
        if name in lowered and pd.api.types.is_numeric_dtype(table[lowered[name]]):
            return lowered[name]
    return None


def _single(
    table: pd.DataFrame, factors: list[str], response: str, seed: str | None, confidence: float
) -> pd.DataFrame:
    frame = table.assign(**{"__benchmark": OVERALL})
    return effects_by_benchmark(
        frame,
        factors=factors,
        response=response,
        benchmark="__benchmark",
        seed=seed,
        confidence=confidence,
        overall=False,
    )


def _check_response_usable(table: pd.DataFrame, name: str, *, explicit: bool) -> None:
    values = pd.to_numeric(table[name], errors="coerce")
    if int(values.notna().sum()) < 2:
        raise AnalysisError(f"{name!r} has fewer than two numeric values")
    if not explicit and values.nunique() < 2:
        # A detected column that never changes is bookkeeping, not a metric.
        raise AnalysisError(f"{name!r} is constant, there is no effect to estimate")


def _paper_rows(gains: pd.DataFrame, factors: list[str]) -> list[str]:
    """Rows of the paper's heatmap: each component alone and all together, when they were run.

    The CSV keeps every configuration; the LaTeX table stays readable for a 2^5 sweep. Sweeps
    without those configurations (e.g. a fraction) keep all rows.
    """
    present = set(gains["config"])
    rows = [f for f in factors if f in present]
    everything = "+".join(factors)
    if everything in present and everything not in rows:
        rows.append(everything)
    return rows if rows else sorted(map(str, present))


def _top_effects(effects: pd.DataFrame, limit: int = 5) -> list[dict[str, Any]]:
    overall = effects[(effects["benchmark"] == OVERALL) & effects["estimable"]]
    if overall.empty:
        overall = effects[effects["estimable"]]
    ranked = overall.reindex(overall["estimate"].abs().sort_values(ascending=False).index)
    return [
        {k: row[k] for k in ("benchmark", "term", "estimate", "ci_low", "ci_high", "aliased_with")}
        for _, row in ranked.head(limit).iterrows()
    ]


def _write_tex(frame: pd.DataFrame, path: Path, caption: str) -> list[Path]:
    path.write_text(to_latex(frame, caption=caption, label=f"tab:{path.stem}"), encoding="utf-8")
    return [path]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "response"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    return value
