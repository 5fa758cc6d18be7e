"""Downsampling that keeps what a reader must see: the first and last point, and each bucket's
minimum and maximum (a spike or a divergence never disappears from a zoomed-out curve)."""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[int, float]


def downsample(points: Sequence[Point], max_points: int | None) -> list[Point]:
    """At most `max_points` points of a step-ordered series, keeping extremes per bucket."""
    n = len(points)
    if max_points is None or n <= max_points:
        return list(points)
    if max_points <= 1:
        return [points[-1]]
    buckets = (max_points - 2) // 2
    kept: list[Point] = [points[0]]
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
