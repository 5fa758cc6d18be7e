"""How many seeds a comparison needs: power of the two-sided paired t-test.

All quantities are on the scale of the paired difference: ``sd_diff`` is the standard deviation
of (config - reference) across seeds, which is what the observed runs give us.
"""

from __future__ import annotations

import functools
import math

from scipy import optimize, stats

from unisd_core.analysis.errors import AnalysisError


def paired_power(effect: float, sd_diff: float, n: int, *, alpha: float = 0.05) -> float:
    """Probability that a two-sided paired t-test at ``alpha`` detects a true mean difference."""
    _check(alpha=alpha, n=n, sd_diff=sd_diff)
    if sd_diff == 0:
        return 1.0 if effect != 0 else alpha
    return _power_at(effect / sd_diff * math.sqrt(n), n, alpha)


def _power_at(noncentrality: float, n: int, alpha: float) -> float:
    df = n - 1
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    # Both tails: an effect can be detected with either sign.
    return float(
        stats.nct.sf(t_crit, df, noncentrality) + stats.nct.cdf(-t_crit, df, noncentrality)
    )


def minimum_detectable_effect(
    sd_diff: float, n: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest true mean difference detected with probability ``power`` using ``n`` seeds."""
    _check(alpha=alpha, n=n, sd_diff=sd_diff, power=power)
    if sd_diff == 0 or power <= alpha:
        return 0.0
    return _noncentrality_for_power(n, alpha, power) * sd_diff / math.sqrt(n)


@functools.lru_cache(maxsize=256)
def _noncentrality_for_power(n: int, alpha: float, power: float) -> float:
    """The noncentrality at which the test reaches ``power``; depends on n, not on the sd.

    Cached: an ablation asks the same question for every benchmark and comparison.
    """

    def shortfall(noncentrality: float) -> float:
        return _power_at(noncentrality, n, alpha) - power

    df = n - 1
    # t quantiles give a close first guess; the bracket around it is then tiny.
    guess = float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df))
    low, high = 0.0, max(guess, 1.0)
    while shortfall(high) < 0:  # power grows with the noncentrality, so doubling brackets it
        low, high = high, high * 2
    return float(optimize.brentq(shortfall, low, high, xtol=1e-10))


def seeds_needed(
    effect: float,
    sd_diff: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    max_seeds: int = 10_000,
) -> int:
    """Fewest seeds (>= 2) for which a paired t-test detects ``effect`` with ``power``."""
    _check(alpha=alpha, n=2, sd_diff=sd_diff, power=power)
    if effect == 0:
        raise AnalysisError("an effect of zero cannot be detected with any number of seeds")
    if sd_diff == 0:
        return 2
    # Rounded so that the same question asked through different sds hits the cache.
    standardized = float(f"{abs(effect) / sd_diff:.12g}")
    n = _seeds_for_standardized(standardized, alpha, power, max_seeds)
    if n is None:
        raise AnalysisError(
            f"more than {max_seeds} seeds would be needed to detect {effect} with "
            f"sd {sd_diff}; the effect is too small for this noise"
        )
    return n


@functools.lru_cache(maxsize=1024)
def _seeds_for_standardized(
    standardized: float, alpha: float, power: float, max_seeds: int
) -> int | None:
    # Start from the normal approximation, then walk to the exact (noncentral t) answer.
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = min(max(2, math.ceil((z / standardized) ** 2)), max_seeds)
    while n > 2 and _power_at(standardized * math.sqrt(n - 1), n - 1, alpha) >= power:
        n -= 1
    while _power_at(standardized * math.sqrt(n), n, alpha) < power:
        n += 1
        if n > max_seeds:
            return None
    return n


def _check(*, alpha: float, n: int, sd_diff: float, power: float | None = None) -> None:
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1, got {alpha}")
    if power is not None and not 0 < power < 1:
        raise AnalysisError(f"power must be between 0 and 1, got {power}")
    if n < 2:
        raise AnalysisError(f"a paired test needs at least two seeds, got {n}")
    if not sd_diff >= 0:
        raise AnalysisError(f"sd_diff must be a non-negative number, got {sd_diff}")
