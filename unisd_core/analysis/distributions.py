"""Cached Student t quantiles.

scipy's distribution methods cost about a millisecond per call; an ablation asks for the same
few quantiles (one per degrees-of-freedom value) hundreds of times.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import stats


@functools.lru_cache(maxsize=4096)
def _t_quantile(q: float, df: float) -> float:
    return float(stats.t.ppf(q, df))


def t_quantile(q: float, df: float | np.ndarray) -> np.ndarray:
    """``stats.t.ppf(q, df)`` for a scalar or array of degrees of freedom (NaN df gives NaN)."""
    values = np.asarray(df, dtype=float)
    flat = values.ravel()
    result = np.full(flat.shape, np.nan)
    finite = np.isfinite(flat) & (flat > 0)
    if finite.any():
        unique, inverse = np.unique(flat[finite], return_inverse=True)
        looked_up = np.array([_t_quantile(q, float(v)) for v in unique])
        result[finite] = looked_up[inverse.ravel()]
    return result.reshape(values.shape)
