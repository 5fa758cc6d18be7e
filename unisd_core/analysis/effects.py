"""Main effects and two-way interactions of two-level factors, with honest confidence intervals.

Model: ordinary least squares of the response on the +/-1 coded factors and their pairwise
products (plus seed blocks when a seed column is given). An effect is twice the coded coefficient,
which in a balanced design is exactly mean(response at high) - mean(response at low).

Noise is estimated from replicates only ("pure error"): the spread of runs of the same
configuration around their mean, after removing what the seed explains when seeds are shared
across configurations. Without replicates there is no such estimate and the intervals are NaN;
pooling unmodelled higher-order interactions into an error term would assume they are zero.

Terms that the design cannot separate are kept once (mains first, then interactions in order)
and labelled through the alias matrix: ``aliased_with`` names the omitted terms whose effect is
folded into an estimate, and an omitted term points back to the term that carries it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from unisd_core.analysis.coding import (
    code_factors,
    numeric_response,
    require_columns,
    unique_rows,
)
from unisd_core.analysis.distributions import t_quantile
from unisd_core.analysis.errors import AnalysisError
from unisd_core.analysis.runs import OVERALL, overall_scores

EFFECT_COLUMNS = ["term", "estimate", "ci_low", "ci_high", "aliased_with"]
DETAIL_COLUMNS = [*EFFECT_COLUMNS, "std_error", "p_value", "df", "estimable"]

# Relative size below which a column counts as a combination of earlier ones. Coded designs
# are +/-1 so exact aliasing shows up many orders of magnitude below this.
_RANK_TOL = 1e-8
_ALIAS_TOL = 1e-6
_INTERCEPT = "(intercept)"


@dataclass(frozen=True)
class EffectsResult:
    """Effects table plus what a reader needs to trust it."""

    table: pd.DataFrame
    confidence: float
    residual_df: int
    sigma: float
    n_runs: int
    n_dropped: int
    levels: dict[str, tuple[Any, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def ci_available(self) -> bool:
        return self.residual_df > 0

    @property
    def note(self) -> str:
        return " ".join(self.notes)


@dataclass(frozen=True)
class _Term:
    name: str
    kind: str  # "nuisance", "main" or "interaction"
    column: np.ndarray


@dataclass(frozen=True)
class _Structure:
    """What a fit needs from the design alone, so benchmarks sharing a design share this work."""

    names: list[str]
    is_kept: np.ndarray
    rows: np.ndarray
    solver: np.ndarray
    xtx_diag: np.ndarray
    aliased_with: list[str]
    n_unseparable: int
    residual_df: int
    error_basis: np.ndarray | None
    cells: np.ndarray
    seed_blocks: bool


def factorial_effects(
    table: pd.DataFrame,
    *,
    factors: Sequence[str],
    response: str,
    seed: str | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Main effects and two-way interactions of ``factors`` on ``response``.

    Returns one row per term (each factor, then ``A:B`` for each pair) with columns ``term``,
    ``estimate`` (mean at high minus mean at low), ``ci_low``, ``ci_high`` and ``aliased_with``
    (empty when the term is clear of the other terms). Intervals are NaN when the table has no
    replicated configuration; the reason is in ``result.attrs["note"]``. With ``seed`` the seed
    is treated as a block shared by all configurations of that seed.
    """
    result = estimate_effects(
        table, factors=factors, response=response, seed=seed, confidence=confidence
    )
    frame = result.table[EFFECT_COLUMNS].copy()
    frame.attrs.update(
        {
            "note": result.note,
            "confidence": result.confidence,
            "residual_df": result.residual_df,
            "n_runs": result.n_runs,
            "levels": result.levels,
        }
    )
    return frame


def estimate_effects(
    table: pd.DataFrame,
    *,
    factors: Sequence[str],
    response: str,
    seed: str | None = None,
    confidence: float = 0.95,
    interactions: bool = True,
) -> EffectsResult:
    """Like :func:`factorial_effects`, with standard errors, p-values and the fit's details."""
    _check_confidence(confidence)
    _check_roles(factors, response, seed)
    y_all = numeric_response(table, response)
    present = ~np.isnan(y_all)
    n_dropped = int((~present).sum())
    data = table.loc[present] if n_dropped else table
    y = y_all[present]
    if len(y) < 2:
        raise AnalysisError(f"response {response!r} has fewer than two values; nothing to compare")
    coded = code_factors(data, factors)
    structure = _structure(
        np.column_stack([c.values for c in coded]),
        [c.name for c in coded],
        _seed_codes(data, seed),
        interactions,
    )
    notes = []
    if n_dropped:
        notes.append(f"{n_dropped} run(s) without a value of {response!r} were left out.")
    return _estimate(
        structure, y, confidence, {c.name: (c.low, c.high) for c in coded}, n_dropped, notes
    )


def effects_by_benchmark(
    table: pd.DataFrame,
    *,
    factors: Sequence[str],
    response: str,
    benchmark: str = "benchmark",
    seed: str | None = None,
    run: Sequence[str] | None = None,
    overall: bool = True,
    confidence: float = 0.95,
    interactions: bool = True,
) -> pd.DataFrame:
    """Effects per benchmark and, with ``overall``, on the mean over benchmarks (as the paper).

    ``run`` names the columns that identify a run across benchmarks (default: the factors and
    the seed). Returns the detail columns with a leading ``benchmark`` column, the number of runs
    ``n`` and a ``note``.
    """
    _check_confidence(confidence)
    _check_roles(factors, response, seed)
    require_columns(table, [benchmark], what="benchmark")
    # Code once for the whole table; benchmarks laid out alike then reuse one design structure.
    coded = code_factors(table, factors)
    levels = {c.name: (c.low, c.high) for c in coded}
    names = [c.name for c in coded]
    matrix = np.column_stack([c.values for c in coded])
    y_all = numeric_response(table, response)
    seeds_all = _seed_codes(table, seed)
    structures: dict[bytes, _Structure] = {}

    def structure_for(x: np.ndarray, seeds: np.ndarray | None) -> _Structure:
        # Benchmarks of one sweep share their layout; in canonical row order their design
        # matrices are byte-identical and the design work is done once.
        key = x.tobytes() + (b"" if seeds is None else seeds.astype(np.int64).tobytes())
        if key not in structures:
            structures[key] = _structure(x, names, seeds, interactions)
        return structures[key]

    pieces: list[tuple[str, dict[str, Any], int, list[str]]] = []
    for name, positions in sorted(table.groupby(benchmark, sort=True).indices.items()):
        present = positions[~np.isnan(y_all[positions])]
        n_dropped = len(positions) - len(present)
        if len(present) == 0:
            continue  # the metric does not exist on this benchmark (e.g. pass@1 on MCQA)
        if len(present) < 2:
            raise AnalysisError(
                f"benchmark {name!r} has fewer than two values of {response!r}; nothing to compare"
            )
        _check_both_levels(matrix[present], names, levels, f"on benchmark {name!r}")
        x, seeds, y = _canonical(matrix[present], _local(seeds_all, present), y_all[present])
        columns, _, notes = _estimate_columns(structure_for(x, seeds), y, confidence, with_p=False)
        if n_dropped:
            notes.append(f"{n_dropped} run(s) without a value of {response!r} were left out.")
        pieces.append((str(name), columns, len(y), notes))
    if not pieces:
        raise AnalysisError(f"response {response!r} has no values on any benchmark")
    if overall and len(pieces) > 1:
        if run is None:
            x, seeds, y, incomplete = _overall_by_design(
                matrix, seeds_all, y_all, table[benchmark].to_numpy()
            )
            x, seeds, y = _canonical(x, seeds, y)
            columns, _, notes = _estimate_columns(
                structure_for(x, seeds), y, confidence, with_p=False
            )
            n_overall = len(y)
        else:
            # The factors and seed are constant within a run; keeping them as keys carries them
            # into the per-run frame.
            keys = list(dict.fromkeys([*run, *factors, *([seed] if seed else [])]))
            frame = table[[*keys, benchmark]].assign(**{response: y_all})
            scores, incomplete = overall_scores(
                frame.dropna(subset=[response]), response=response, benchmark=benchmark, keys=keys
            )
            result = estimate_effects(
                scores,
                factors=factors,
                response=response,
                seed=seed,
                confidence=confidence,
                interactions=interactions,
            )
            columns = result.table.to_dict("list")
            notes, n_overall = result.notes, result.n_runs
        if incomplete:
            notes.append(
                f"{incomplete} run(s) missing a benchmark were left out of the overall score."
            )
        pieces.append((OVERALL, columns, n_overall, notes))
    return _stack(pieces)


def _stack(pieces: list[tuple[str, dict[str, Any], int, list[str]]]) -> pd.DataFrame:
    """One frame from per-benchmark column dicts (one DataFrame build instead of one each)."""
    sizes = [len(columns["term"]) for _, columns, _, _ in pieces]
    data: dict[str, Any] = {"benchmark": np.repeat([name for name, *_ in pieces], sizes)}
    for column in DETAIL_COLUMNS:
        if column != "p_value":
            data[column] = np.concatenate([np.asarray(c[column]) for _, c, _, _ in pieces])
    # One scipy call for every benchmark's p-values (pieces may also carry their own).
    data["p_value"] = _p_values(data["estimate"], data["std_error"], data["df"])
    data["n"] = np.repeat([n for _, _, n, _ in pieces], sizes)
    data["note"] = np.repeat([" ".join(notes) for *_, notes in pieces], sizes)
    frame = pd.DataFrame(data, columns=["benchmark", *DETAIL_COLUMNS, "n", "note"])
    frame["df"] = frame["df"].astype(int)
    frame["estimable"] = frame["estimable"].astype(bool)
    return frame


def _local(seed_codes: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    """Seed codes of a subset, renumbered 0..s-1 (a benchmark may lack some seeds)."""
    if seed_codes is None:
        return None
    return np.unique(seed_codes[rows], return_inverse=True)[1].ravel()


def _canonical(
    x: np.ndarray, seeds: np.ndarray | None, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Rows sorted by configuration, then seed: the estimates do not depend on row order."""
    _, cells = unique_rows(x > 0)
    order = np.lexsort((cells,) if seeds is None else (seeds, cells))
    return x[order], None if seeds is None else seeds[order], y[order]


def _overall_by_design(
    matrix: np.ndarray,
    seed_codes: np.ndarray | None,
    y: np.ndarray,
    benchmarks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, int]:
    """Mean over benchmarks per run, a run being a configuration and seed (array version).

    Returns the runs' coded factors, seed codes, overall scores, and how many runs were left
    out for lacking a value on some benchmark.
    """
    present = ~np.isnan(y)
    seeds = np.zeros(len(y), dtype=np.int64) if seed_codes is None else seed_codes
    identity = np.column_stack([matrix > 0, seeds]).astype(np.int64)
    runs, run_of_row = unique_rows(identity[present])
    bench_codes, bench_names = pd.factorize(benchmarks[present])
    n_bench = len(bench_names)
    pairs = run_of_row * n_bench + bench_codes
    if len(np.unique(pairs)) < len(pairs):
        raise AnalysisError(
            "several rows for the same configuration, seed and benchmark: the overall score "
            "needs one value per run and benchmark (name the seed column, or pass run=...)"
        )
    counts = np.bincount(run_of_row, minlength=len(runs))
    sums = np.bincount(run_of_row, weights=y[present], minlength=len(runs))
    complete = counts == n_bench
    k = matrix.shape[1]
    x = np.where(runs[complete, :k] > 0, 1.0, -1.0)
    run_seeds = None
    if seed_codes is not None:
        run_seeds = np.unique(runs[complete, k], return_inverse=True)[1].ravel()
    return x, run_seeds, sums[complete] / n_bench, int((~complete).sum())


# ----------------------------------------------------------------------------- fitting


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise AnalysisError(f"confidence must be between 0 and 1, got {confidence}")


def _check_roles(factors: Sequence[str], response: str, seed: str | None) -> None:
    if response in factors or (seed is not None and (seed in factors or seed == response)):
        raise AnalysisError("response, seed and factors must be different columns")


def _check_both_levels(
    x: np.ndarray, names: list[str], levels: dict[str, tuple[Any, Any]], where: str
) -> None:
    for j, name in enumerate(names):
        column = x[:, j]
        if not (column > 0).any() or not (column < 0).any():
            only = levels[name][1] if (column > 0).any() else levels[name][0]
            raise AnalysisError(
                f"factor {name!r} has only one level ({only!r}) {where}: its effect cannot be "
                "estimated without runs at both levels"
            )


def _seed_codes(data: pd.DataFrame, seed: str | None) -> np.ndarray | None:
    if seed is None:
        return None
    require_columns(data, [seed], what="seed")
    if data[seed].isna().any():
        raise AnalysisError(f"seed column {seed!r} has missing values; every run needs its seed")
    codes, _ = pd.factorize(data[seed])
    return np.asarray(codes)


def _candidate_terms(
    x: np.ndarray, names: list[str], seed_codes: np.ndarray | None, interactions: bool
) -> list[_Term]:
    n = len(x)
    terms = [_Term(_INTERCEPT, "nuisance", np.ones(n))]
    if seed_codes is not None:
        # Treatment-coded seed blocks; the first seed is the reference level.
        for level in range(1, int(seed_codes.max()) + 1):
            terms.append(_Term("seed", "nuisance", (seed_codes == level).astype(float)))
    terms.extend(_Term(name, "main", x[:, j]) for j, name in enumerate(names))
    if interactions:
        for a, b in itertools.combinations(range(len(names)), 2):
            terms.append(_Term(f"{names[a]}:{names[b]}", "interaction", x[:, a] * x[:, b]))
    return terms


def _select_estimable(terms: list[_Term]) -> list[bool]:
    """Greedy Gram-Schmidt: keep a term when it adds a direction the earlier ones do not span."""
    n = len(terms[0].column)
    basis = np.empty((n, len(terms)))
    size = 0
    kept: list[bool] = []
    for term in terms:
        c = term.column
        norm = float(np.linalg.norm(c))
        q = basis[:, :size]
        r = c - q @ (q.T @ c)
        r = r - q @ (q.T @ r)  # second pass keeps the basis orthogonal in floating point
        residual = float(np.linalg.norm(r))
        keep = norm > 0 and residual > _RANK_TOL * max(norm, 1.0)
        kept.append(bool(keep))
        if keep:
            basis[:, size] = r / residual
            size += 1
    return kept


def _structure(
    x: np.ndarray, names: list[str], seed_codes: np.ndarray | None, interactions: bool
) -> _Structure:
    terms = _candidate_terms(x, names, seed_codes, interactions)
    kept_flags = _select_estimable(terms)
    kept = [t for t, k in zip(terms, kept_flags, strict=True) if k]
    dropped = [t for t, k in zip(terms, kept_flags, strict=True) if not k]
    x1 = np.column_stack([t.column for t in kept])
    _raise_if_confounded(kept, dropped, x1)

    xtx_inv = np.linalg.inv(x1.T @ x1)
    solver = xtx_inv @ x1.T
    # Alias matrix: how much of each omitted column leaks into each estimated coefficient.
    x2 = np.column_stack([t.column for t in dropped]) if dropped else np.empty((len(x), 0))
    alias = solver @ x2

    effect_terms = [t for t in terms if t.kind != "nuisance"]
    kept_index = {id(t): i for i, t in enumerate(kept)}
    dropped_index = {id(t): j for j, t in enumerate(dropped)}
    aliased_with = []
    for term in effect_terms:
        if id(term) in kept_index:
            i = kept_index[id(term)]
            partners = [
                _scaled(alias[i, j], dropped[j].name)
                for j in np.flatnonzero(np.abs(alias[i]) > _ALIAS_TOL)
            ]
        else:
            partners = _carriers(alias[:, dropped_index[id(term)]], kept)
        aliased_with.append(", ".join(partners))

    residual_df, error_basis, cells = _pure_error_space(x, seed_codes)
    return _Structure(
        names=[t.name for t in effect_terms],
        is_kept=np.array([id(t) in kept_index for t in effect_terms]),
        rows=np.array([kept_index.get(id(t), 0) for t in effect_terms]),
        solver=solver,
        xtx_diag=np.diag(xtx_inv).copy(),
        aliased_with=aliased_with,
        n_unseparable=len([t for t in dropped if t.kind != "nuisance"]),
        residual_df=residual_df,
        error_basis=error_basis,
        cells=cells,
        seed_blocks=seed_codes is not None and int(seed_codes.max()) > 0,
    )


def _estimate(
    structure: _Structure,
    y: np.ndarray,
    confidence: float,
    levels: dict[str, tuple[Any, Any]],
    n_dropped: int,
    notes: list[str],
) -> EffectsResult:
    columns, sigma, fit_notes = _estimate_columns(structure, y, confidence)
    return EffectsResult(
        table=pd.DataFrame(columns, columns=DETAIL_COLUMNS),
        confidence=confidence,
        residual_df=structure.residual_df,
        sigma=sigma,
        n_runs=len(y),
        n_dropped=n_dropped,
        levels=levels,
        notes=[*fit_notes, *notes],
    )


def _estimate_columns(
    structure: _Structure, y: np.ndarray, confidence: float, *, with_p: bool = True
) -> tuple[dict[str, Any], float, list[str]]:
    """The detail columns as arrays, sigma, and the notes that explain the intervals.

    ``with_p=False`` leaves ``p_value`` to the caller, who can then compute many at once.
    """
    beta = structure.solver @ y
    df = structure.residual_df
    sigma = _pure_error_sigma(structure, y)
    is_kept = structure.is_kept
    estimate = np.where(is_kept, 2.0 * beta[structure.rows], np.nan)
    if df:
        t_crit = float(t_quantile(0.5 + confidence / 2, df))
        se = np.where(is_kept, 2.0 * sigma * np.sqrt(structure.xtx_diag[structure.rows]), np.nan)
        p_value = _p_values(estimate, se, np.full(len(se), df)) if with_p else None
        how = "seed-to-seed variation within configurations"
        if structure.seed_blocks:
            how += ", with seeds as blocks"
        notes = [f"Standard errors from {how} ({df} df)."]
    else:
        t_crit = np.nan
        se = np.full(len(is_kept), np.nan)
        p_value = se.copy() if with_p else None
        notes = [
            "Confidence intervals unavailable: no configuration was run more than once, so "
            "run-to-run noise cannot be estimated; run each configuration with two or more seeds."
        ]
    if structure.n_unseparable:
        n_aliased = sum(bool(a) for a, k in zip(structure.aliased_with, is_kept, strict=True) if k)
        notes.append(
            f"{structure.n_unseparable} interaction(s) cannot be separated from other terms; "
            f"{n_aliased} estimate(s) include aliased terms (see aliased_with)."
        )
    columns = {
        "term": structure.names,
        "estimate": estimate,
        "ci_low": estimate - t_crit * se,
        "ci_high": estimate + t_crit * se,
        "aliased_with": structure.aliased_with,
        "std_error": se,
        "p_value": p_value,
        "df": np.full(len(is_kept), df),
        "estimable": is_kept,
    }
    return columns, sigma, notes


def _p_values(estimate: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided t-test p-values of effect = 0 (NaN where there is no standard error)."""
    usable = (se > 0) & (df > 0)
    result = np.full(len(estimate), np.nan)
    if usable.any():
        ratio = np.abs(estimate[usable]) / se[usable]
        result[usable] = 2 * stats.t.sf(ratio, df[usable])
    return result


def _carriers(column: np.ndarray, kept: list[_Term]) -> list[str]:
    """Who carries an omitted term: the estimated terms its column leaks into."""
    nonzero = np.flatnonzero(np.abs(column) > _ALIAS_TOL)
    carriers = [_scaled(column[i], kept[i].name) for i in nonzero if kept[i].kind != "nuisance"]
    if carriers:
        return carriers
    # Only the intercept or seed blocks absorb it: the term is constant within blocks.
    return sorted({kept[i].name for i in nonzero}) or [_INTERCEPT]


def _scaled(coefficient: float, name: str) -> str:
    if abs(coefficient - 1.0) < _ALIAS_TOL:
        return name
    if abs(coefficient + 1.0) < _ALIAS_TOL:
        return f"-{name}"
    return f"{coefficient:.3g}*{name}"


def _raise_if_confounded(kept: list[_Term], dropped: list[_Term], x1: np.ndarray) -> None:
    for term in dropped:
        if term.kind != "main":
            continue
        coefficients, *_ = np.linalg.lstsq(x1, term.column, rcond=None)
        partners = sorted(
            {t.name for t, c in zip(kept, coefficients, strict=True) if abs(c) > _ALIAS_TOL}
            - {_INTERCEPT}
        )
        with_what = ", ".join(partners) if partners else "the intercept (it is constant)"
        hint = (
            " If seeds are not shared across configurations, analyse without seed blocks."
            if "seed" in partners
            else ""
        )
        raise AnalysisError(
            f"factor {term.name!r} is confounded with {with_what}: in this table it never varies "
            f"independently, so its effect cannot be separated; add runs where they differ.{hint}"
        )


def _pure_error_space(
    x: np.ndarray, seed_codes: np.ndarray | None
) -> tuple[int, np.ndarray | None, np.ndarray]:
    """Residual df of the saturated model (one mean per configuration, plus seed blocks).

    Without seed blocks the residual is the deviation from the cell mean (``cells`` holds each
    row's configuration); with them we keep an orthonormal basis of the saturated model.
    """
    _, cells = unique_rows(x > 0)
    n_cells = int(cells.max()) + 1
    n = len(x)
    if seed_codes is None or int(seed_codes.max()) == 0:
        return max(n - n_cells, 0), None, cells
    dummies = np.zeros((n, n_cells + int(seed_codes.max())))
    dummies[np.arange(n), cells] = 1.0
    blocks = seed_codes > 0
    dummies[np.flatnonzero(blocks), n_cells + seed_codes[blocks] - 1] = 1.0
    u, s, _ = np.linalg.svd(dummies, full_matrices=False)
    rank = int((s > _RANK_TOL * s[0]).sum())
    return max(n - rank, 0), u[:, :rank], cells


def _pure_error_sigma(structure: _Structure, y: np.ndarray) -> float:
    df = structure.residual_df
    if df == 0:
        return float("nan")
    if structure.error_basis is None:
        cells = structure.cells
        counts = np.bincount(cells)
        means = np.bincount(cells, weights=y) / counts
        residual = y - means[cells]
    else:
        basis = structure.error_basis
        residual = y - basis @ (basis.T @ y)
    return float(np.sqrt(residual @ residual / df))
