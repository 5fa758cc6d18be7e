"""Downsampling that keeps what a reader must see: the first and last point, and each bucket's
minimum and maximum (a spike or a divergence never disappears from a zoomed-out curve)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

#: A stored point as the API returns it: (step, value, wall time in epoch seconds).
Point = tuple[int, float, float | None]
#: Any point tuple that starts (step, value); what follows (the wall time) travels with it.
P = TypeVar("P", bound=tuple[Any, ...])


def downsample(points: Sequence[P], max_points: int | None) -> list[P]:
    """At most `max_points` points of a step-ordered series, keeping extremes per bucket.

    Whole points are kept or dropped, never rebuilt, so a kept point's wall time is the one
    stored with its step (a time axis drawn from a downsampled series stays exact).
    """
    n = len(points)
    if max_points is None or n <= max_points:
        return list(points)
    if max_points <= 1:
        return [points[-1]]
    buckets = (max_points - 2) // 2
    kept: list[P] = [points[0]]
    interior = n - 2
    for b in range(buckets):
        start = 1 + b * interior // buckets
        end = 1 + (b + 1) * interior // buckets
        if start >= end:
            continue
        lo = hi = start
        for i in range(start + 1, end):
            value = points[i][1]
            if value < points[lo][1]:
                lo = i
            elif value > points[hi][1]:
                hi = i
        first, second = sorted((lo, hi))
        kept.append(points[first])
        if second != first:
            kept.append(points[second])
    kept.append(points[-1])
    return kept
