"""Data -> plotly figures. Pure functions: tested without a browser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def metric_curves(
    series: Mapping[str, Sequence[tuple[int, float]]], *, title: str, y_title: str = "value"
) -> go.Figure:
    """One line per metric key, x = optimizer step."""
    figure = go.Figure()
    for index, (key, points) in enumerate(series.items()):
        figure.add_trace(
            go.Scatter(
                x=[step for step, _ in points],
                y=[value for _, value in points],
                mode="lines+markers",
                name=key,
                line={"color": PALETTE[index % len(PALETTE)]},
            )
        )
    figure.update_layout(
        title=title,
        xaxis_title="step",
        yaxis_title=y_title,
        template="plotly_white",
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h"},
    )
    return figure
