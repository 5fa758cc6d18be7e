"""The paper's main table from a table of runs: scores, gains over the base, retention, findings.

Input: one row per run x evaluation benchmark with columns ``method`` (the row label, e.g. a
preset name), ``benchmark``, ``seed``, the score and, optionally, the retention perplexity.
Rows of the table are methods, columns the benchmarks and their overall mean (the mean over
benchmarks per method and seed, so a run set missing one benchmark leaves the overall empty).

The untrained base model is evaluated greedily, so its scores do not depend on the training
seed: when the base was evaluated for one seed only, that evaluation stands for every seed and
the gains are still paired across seeds.

The findings the paper reports are checked with paired t intervals across seeds; each gets a
verdict: ``holds`` (the interval excludes zero in the paper's direction), ``contradicted`` (it
excludes zero the other way) or ``unresolved`` (the interval covers zero, or too few seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from unisd_core.analysis.coding import require_columns
from unisd_core.analysis.distributions import t_quantile
from unisd_core.analysis.errors import AnalysisError
from unisd_core.analysis.runs import OVERALL
from unisd_core.analysis.summaries import gain_over_base

#: Rows that do not distil from the model itself (the paper's static-imitation baselines).
STATIC_IMITATION = ("sft",)
#: The single-component rows of the paper's ablation, and the integrated recipe.
SINGLE_COMPONENTS = ("agree", "ema", "contrast", "match", "clip")
INTEGRATED = "unisd_star"
#: Rows that learn from the model's own distribution under privileged context.
SELF_DISTILLATION = ("gkd", "sdft", "opsd", *SINGLE_COMPONENTS, INTEGRATED)

Verdict = str  # "holds" | "contradicted" | "unresolved"


@dataclass(frozen=True)
class Interval:
    """Mean with a t interval across seeds; ``low``/``high`` are NaN with fewer than 2 values."""

    mean: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
        x = np.asarray(values, dtype=float)
        x = x[~np.isnan(x)]
        if len(x) == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        mean = float(x.mean())
        if len(x) < 2:
            return cls(mean, float("nan"), float("nan"), 1)
        half = float(t_quantile(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
        return cls(mean, mean - half, mean + half, len(x))

    def verdict(self) -> Verdict:
        if self.n < 2 or np.isnan(self.low):
            return "unresolved"
        if self.low > 0:
            return "holds"
        if self.high < 0:
            return "contradicted"
        return "unresolved"


@dataclass(frozen=True)
class Finding:
    claim: str
    verdict: Verdict
    evidence: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PaperTable:
    """``scores``: method x column mean with its interval (long form); ``gains``: each method
    minus the base per column (paired across seeds); ``retention``: retention PPL per method."""

    methods: list[str]
    columns: list[str]
    scores: pd.DataFrame
    gains: pd.DataFrame
    retention: pd.DataFrame
    per_seed: pd.DataFrame  # seed x (method, column) scores: what paired claims are built from
    retention_per_seed: pd.DataFrame
    notes: list[str]

    def grid(self, digits: int = 1, scale: float = 100.0) -> pd.DataFrame:
        """Display grid: methods x columns, cells ``mean ± half-width`` (in percent by default)."""
        cells = {}
        for row in self.scores.itertuples():
            half = (row.high - row.low) / 2 if row.n >= 2 else float("nan")
            text = f"{row.mean * scale:.{digits}f}"
            if not np.isnan(half):
                text += f" ± {half * scale:.{digits}f}"
            cells[(row.method, row.benchmark)] = text if not np.isnan(row.mean) else "–"
        return pd.DataFrame(
            [[cells.get((m, c), "–") for c in self.columns] for m in self.methods],
            index=pd.Index(self.methods, name="method"),
            columns=self.columns,
        )


def paper_table(
    table: pd.DataFrame,
    *,
    response: str = "score",
    retention: str | None = "retention_ppl",
    method: str = "method",
    benchmark: str = "benchmark",
    seed: str = "seed",
    base: str = "base",
    methods: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> PaperTable:
    """Build the paper's table; ``methods``/``columns`` fix the row and column order."""
    require_columns(table, [method, benchmark, seed, response], what="paper-table")
    frame = _broadcast_base(table, method=method, seed=seed, base=base)
    notes: list[str] = []
    broadcast = len(frame) > len(table)
    if broadcast:
        notes.append(
            f"the untrained {base!r} row was evaluated once; its greedy scores stand for every seed"
        )
    present_methods = list(dict.fromkeys(frame[method]))
    order = [m for m in (methods or present_methods) if m in present_methods]
    bench = [b for b in (columns or sorted(set(frame[benchmark]))) if b in set(frame[benchmark])]
    per_seed = (
        frame.pivot_table(index=seed, columns=[method, benchmark], values=response, aggfunc="mean")
        .reindex(columns=pd.MultiIndex.from_product([order, bench]))
        .astype(float)
    )
    overall = per_seed.T.groupby(level=0, sort=False).mean().T  # NaN when a column is missing
    complete = len(bench) == per_seed.T.groupby(level=0, sort=False).count().T
    overall = overall.where(complete)
    for m in order:
        per_seed[(m, OVERALL)] = overall.get(m, np.nan)
    cols = [*bench, OVERALL] if len(bench) > 1 else bench
    per_seed = per_seed.reindex(columns=pd.MultiIndex.from_product([order, cols]))
    scores = pd.DataFrame(
        [
            {"method": m, "benchmark": c, **_interval_dict(per_seed[(m, c)], confidence)}
            for m in order
            for c in cols
        ]
    )
    if broadcast:  # one evaluation, not a spread over seeds: report it without an interval
        _mark_single(scores, base)
    gains = pd.DataFrame()
    if base in order and len(order) > 1:
        gains = gain_over_base(
            frame,
            response=response,
            by=method,
            base=base,
            seed=seed,
            benchmark=benchmark,
            configs=[m for m in order if m != base],
            confidence=confidence,
        )
        if broadcast:
            # The base's copies are one measurement, not a sample: only gains paired over two
            # or more seeds carry an interval; the others are point estimates.
            unpaired = gains["method"] != "paired"
            gains.loc[unpaired, ["ci_low", "ci_high"]] = np.nan
            gains.loc[unpaired, "method"] = "none"
    else:
        notes.append(f"no {base!r} row: gains over the base are not computed")
    retention_per_seed = pd.DataFrame()
    retention_rows = []
    if retention is not None and retention in frame.columns:
        retention_per_seed = (
            frame.pivot_table(index=seed, columns=method, values=retention, aggfunc="mean")
            .reindex(columns=order)
            .astype(float)
        )
        for m in order:
            retention_rows.append(
                {"method": m, **_interval_dict(retention_per_seed[m], confidence)}
            )
    retention_frame = pd.DataFrame(retention_rows)
    if broadcast and not retention_frame.empty:
        _mark_single(retention_frame, base)
    return PaperTable(
        methods=order,
        columns=cols,
        scores=scores,
        gains=gains,
        retention=retention_frame,
        per_seed=per_seed,
        retention_per_seed=retention_per_seed,
        notes=notes,
    )


def _mark_single(frame: pd.DataFrame, base: str) -> None:
    rows = frame["method"] == base
    frame.loc[rows, ["low", "high"]] = np.nan
    frame.loc[rows, "n"] = 1


def _interval_dict(values: pd.Series, confidence: float) -> dict[str, float | int]:
    interval = Interval.of(values.to_numpy(dtype=float), confidence)
    return {"mean": interval.mean, "low": interval.low, "high": interval.high, "n": interval.n}


def _broadcast_base(table: pd.DataFrame, *, method: str, seed: str, base: str) -> pd.DataFrame:
    """Copy a once-evaluated base to every seed of the table (see the module docstring)."""
    base_rows = table[table[method] == base]
    base_seeds = set(base_rows[seed])
    seeds = sorted(set(table[seed]))
    if len(base_seeds) != 1 or len(seeds) < 2:
        return table.reset_index(drop=True)
    copies = [base_rows.assign(**{seed: s}) for s in seeds if s not in base_seeds]
    return pd.concat([table, *copies], ignore_index=True)


# ----------------------------------------------------------------------------- findings


def paired_difference(
    result: PaperTable, a: str, b: str, column: str = OVERALL, confidence: float = 0.95
) -> Interval:
    """``a - b`` on ``column``, paired over the seeds where both have a score."""
    if (a, column) not in result.per_seed or (b, column) not in result.per_seed:
        return Interval.of([], confidence)
    return Interval.of((result.per_seed[(a, column)] - result.per_seed[(b, column)]), confidence)


def _retention_difference(result: PaperTable, a: str, b: str, confidence: float) -> Interval:
    frame = result.retention_per_seed
    if a not in frame or b not in frame:
        return Interval.of([], confidence)
    return Interval.of(frame[a] - frame[b], confidence)


def _combine(verdicts: list[Verdict]) -> Verdict:
    if verdicts and all(v == "holds" for v in verdicts):
        return "holds"
    if "contradicted" in verdicts:
        return "contradicted"
    return "unresolved"


def _describe(name: str, interval: Interval, scale: float, unit: str) -> str:
    if interval.n == 0:
        return f"{name}: not measured"
    text = f"{name}: {interval.mean * scale:+.2f}{unit}"
    if interval.n >= 2:
        text += f" (95% CI {interval.low * scale:+.2f} to {interval.high * scale:+.2f}, "
        text += f"{interval.n} seeds)"
    else:
        text += " (one seed: no interval)"
    return f"{text} → {interval.verdict()}"


def paper_findings(result: PaperTable, confidence: float = 0.95) -> list[Finding]:
    """The paper's three headline claims, checked on this table (see the module docstring)."""
    present = set(result.methods)
    distillers = [m for m in SELF_DISTILLATION if m in present]
    findings = []

    # (1) SFT drifts further from the base distribution than self-distillation: a higher
    # retention perplexity (the base model finds the fine-tuned outputs less likely).
    if "sft" in present and distillers and not result.retention.empty:
        intervals = {m: _retention_difference(result, "sft", m, confidence) for m in distillers}
        findings.append(
            Finding(
                "SFT drifts from the base distribution more than self-distillation "
                "(retention PPL of SFT minus each self-distillation method > 0)",
                _combine([i.verdict() for i in intervals.values()]),
                [_describe(f"sft − {m}", i, 1.0, " PPL") for m, i in intervals.items()],
            )
        )
    else:
        findings.append(_not_run("SFT drifts more than self-distillation", "sft, a distiller"))

    # (2) UniSD* is at least as good as the best single component on the overall score.
    singles = [m for m in SINGLE_COMPONENTS if m in present]
    if INTEGRATED in present and singles:
        means = {m: _mean(result, m) for m in singles}
        best = max(means, key=lambda m: -np.inf if np.isnan(means[m]) else means[m])
        interval = paired_difference(result, INTEGRATED, best, confidence=confidence)
        findings.append(
            Finding(
                f"UniSD* ≥ the best single component on the overall score (best run here: {best}"
                f"{'' if len(singles) > 1 else ', the only single component run'})",
                interval.verdict(),
                [_describe(f"unisd_star − {best} (overall, points)", interval, 100.0, "")],
            )
        )
    else:
        findings.append(_not_run("UniSD* ≥ the best single component", "unisd_star, a component"))

    # (3) Self-distillation beats static imitation (SFT) on the overall score.
    if "sft" in present and distillers:
        intervals = {
            m: paired_difference(result, m, "sft", confidence=confidence) for m in distillers
        }
        findings.append(
            Finding(
                "Self-distillation beats static imitation (each method minus SFT, overall > 0)",
                _combine([i.verdict() for i in intervals.values()]),
                [
                    _describe(f"{m} − sft (overall, points)", i, 100.0, "")
                    for m, i in intervals.items()
                ],
            )
        )
    else:
        findings.append(_not_run("Self-distillation beats static imitation", "sft, a distiller"))
    return findings


def _mean(result: PaperTable, method: str, column: str = OVERALL) -> float:
    if (method, column) not in result.per_seed:
        return float("nan")
    return float(np.nanmean(result.per_seed[(method, column)].to_numpy(dtype=float)))


def _not_run(claim: str, needs: str) -> Finding:
    return Finding(
        claim, "unresolved", [f"not testable: the table lacks the rows it needs ({needs})"]
    )


# ----------------------------------------------------------------------------- item level


def item_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> Interval:
    """Accuracy difference of two models scored on the same items, with a paired normal CI.

    This is the evaluation-sampling error a fixed subset of n items carries (seeds do not
    capture it: every run sees the same items).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise AnalysisError(f"item scores must align: {x.shape} vs {y.shape}")
    d = x - y
    if len(d) < 2:
        return Interval.of(d, confidence)
    from scipy.stats import norm

    half = float(norm.ppf(0.5 + confidence / 2) * d.std(ddof=1) / np.sqrt(len(d)))
    return Interval(float(d.mean()), float(d.mean() - half), float(d.mean() + half), len(d))


def worst_case_half_width(n_items: int, confidence: float = 0.95) -> float:
    """Half-width of the CI of an accuracy difference between two independent evaluations on
    ``n_items`` items each, at the worst case p = 0.5 (what a subset of this size can resolve)."""
    if n_items < 1:
        raise AnalysisError("n_items must be >= 1")
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2) * np.sqrt(2 * 0.25 / n_items))
