"""Turning two-level factor columns into the +/-1 coding that factorial effects are defined on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from unisd_core.analysis.errors import AnalysisError

# Words that users and configs write for a switched-off / switched-on component. Matching them
# first means "off"/"on" or "no"/"yes" columns get the obvious low/high, not alphabetical order.
_OFF_WORDS = frozenset({"false", "off", "no", "0", "0.0", "disabled", "low", "-", "-1"})
_ON_WORDS = frozenset({"true", "on", "yes", "1", "1.0", "enabled", "high", "+", "+1"})


@dataclass(frozen=True)
class CodedFactor:
    """One factor column coded as -1 (low level) / +1 (high level)."""

    name: str
    low: Any
    high: Any
    values: np.ndarray

    @property
    def is_switch(self) -> bool:
        """True when the levels read as off/on (a component flag), not as two parameter values."""
        return _word(self.low) in _OFF_WORDS and _word(self.high) in _ON_WORDS


def _word(value: Any) -> str:
    return str(value).strip().lower()


def order_levels(first: Any, second: Any) -> tuple[Any, Any]:
    """Return ``(low, high)`` for two distinct levels.

    Off/on words decide first; then the natural order of the values (False < True, 0.001 < 0.01);
    values that cannot be compared fall back to the order of their text.
    """
    if _word(first) in _OFF_WORDS and _word(second) in _ON_WORDS:
        return first, second
    if _word(second) in _OFF_WORDS and _word(first) in _ON_WORDS:
        return second, first
    try:
        return (first, second) if first < second else (second, first)
    except TypeError:
        return (first, second) if str(first) < str(second) else (second, first)


def code_factor(name: str, column: pd.Series) -> CodedFactor:
    """Code one column; raise :class:`AnalysisError` unless it has exactly two levels."""
    if column.dtype == bool:
        # Fast path for the common case: component flags stored as booleans.
        flags = column.to_numpy()
        has_on, has_off = bool(flags.any()), not bool(flags.all())
        if has_on and has_off:
            return CodedFactor(name=name, low=False, high=True, values=np.where(flags, 1.0, -1.0))
    missing = int(column.isna().sum())
    if missing:
        raise AnalysisError(
            f"factor {name!r} has {missing} missing value(s); every run needs a level for it"
        )
    levels = pd.unique(column)
    if len(levels) < 2:
        only = levels[0] if len(levels) else None
        raise AnalysisError(
            f"factor {name!r} has only one level ({only!r}) in the table: its effect cannot be "
            "estimated without runs at both levels"
        )
    if len(levels) > 2:
        shown = ", ".join(repr(v) for v in levels[:6])
        raise AnalysisError(
            f"factor {name!r} has {len(levels)} levels ({shown}); factorial effects need "
            "two-level factors (filter the table to two levels or recode the column)"
        )
    low, high = order_levels(levels[0], levels[1])
    values = np.where(column.to_numpy() == high, 1.0, -1.0)
    return CodedFactor(name=name, low=low, high=high, values=values)


def code_factors(table: pd.DataFrame, factors: Sequence[str]) -> list[CodedFactor]:
    """Code every factor of ``table`` after checking the names are usable."""
    if isinstance(factors, str):
        raise AnalysisError("factors must be a list of column names, not one string")
    if not factors:
        raise AnalysisError("no factors given: name at least one two-level column")
    duplicated = sorted({f for f in factors if list(factors).count(f) > 1})
    if duplicated:
        raise AnalysisError(f"factors listed more than once: {', '.join(duplicated)}")
    require_columns(table, factors, what="factor")
    return [code_factor(name, table[name]) for name in factors]


def require_columns(table: pd.DataFrame, columns: Sequence[str], *, what: str) -> None:
    """Raise naming every requested column that the table lacks."""
    absent = [c for c in columns if c not in table.columns]
    if absent:
        have = ", ".join(map(str, table.columns[:20]))
        raise AnalysisError(
            f"{what} column(s) not in the table: {', '.join(map(str, absent))} (columns: {have})"
        )


def numeric_response(table: pd.DataFrame, response: str) -> np.ndarray:
    """The response as floats; text that is not a number is an error, not a silent NaN."""
    require_columns(table, [response], what="response")
    column = table[response]
    if column.dtype == bool:
        return column.to_numpy(dtype=float)
    converted = pd.to_numeric(column, errors="coerce")
    bad = converted.isna() & column.notna()
    if bad.any():
        example = column[bad].iloc[0]
        raise AnalysisError(
            f"response {response!r} has non-numeric value(s), e.g. {example!r}; "
            "a response must be a number per run"
        )
    return converted.to_numpy(dtype=float)


def unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of an integer/boolean matrix and each row's index among them.

    Same contract as ``np.unique(matrix, axis=0, return_inverse=True)`` (rows in sorted order),
    but for small non-negative integers the rows are packed into one int64 key first, which is
    an order of magnitude faster than numpy's structured-row sort on tables of this size.
    """
    values = np.asarray(matrix).astype(np.int64)
    if values.ndim != 2 or len(values) == 0 or values.min() < 0:
        uniques, inverse = np.unique(values, axis=0, return_inverse=True)
        return uniques, inverse.ravel()
    widths = [max(int(column.max()), 1).bit_length() for column in values.T]
    if sum(widths) > 62:
        uniques, inverse = np.unique(values, axis=0, return_inverse=True)
        return uniques, inverse.ravel()
    # Most significant bits go to the first column, so the key order is the row order.
    shifts = np.cumsum([0, *widths[::-1]])[:-1][::-1]
    keys = (values << shifts).sum(axis=1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return values[first], inverse.ravel()
