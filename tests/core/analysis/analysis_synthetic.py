"""Synthetic ablation tables with known effects, shared by the analysis tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from unisd_core.analysis import full_factorial

COMPONENTS = ["agreement", "ema", "contrastive", "feature_matching", "clipping"]

# True effects (mean at high minus mean at low) of the synthetic model below.
MAIN_EFFECTS = {
    "agreement": 3.0,
    "ema": 0.0,
    "contrastive": -1.0,
    "feature_matching": 0.0,
    "clipping": 1.6,
}
INTERACTION = ("agreement", "ema", 1.2)


def linear_model_table(
    rng: np.random.Generator,
    *,
    factors: Sequence[str] = COMPONENTS,
    seeds: int = 3,
    noise: float = 1.0,
    seed_sd: float = 0.0,
    design: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Runs of ``design`` (default 2^k full factorial) x seeds with response ``accuracy``.

    accuracy = 60 + sum(effect/2 * x) + interaction/2 * x_a * x_b + seed shift + noise, with x
    coded -1/+1, so each effect is exactly the difference of means between levels.
    """
    runs = full_factorial(list(factors), seeds=seeds).runs() if design is None else design.copy()
    coded = {f: np.where(runs[f], 1.0, -1.0) for f in factors}
    y = np.full(len(runs), 60.0)
    for name in factors:
        y += MAIN_EFFECTS.get(name, 0.0) / 2 * coded[name]
    a, b, size = INTERACTION
    if a in coded and b in coded:
        y += size / 2 * coded[a] * coded[b]
    shifts = rng.normal(0.0, seed_sd, size=int(runs["seed"].max()) + 1) if seed_sd else None
    if shifts is not None:
        y += shifts[runs["seed"].to_numpy()]
    runs["accuracy"] = y + rng.normal(0.0, noise, size=len(runs))
    return runs


def true_effect(term: str) -> float:
    if ":" in term:
        a, b = term.split(":")
        return INTERACTION[2] if {a, b} == {INTERACTION[0], INTERACTION[1]} else 0.0
    return MAIN_EFFECTS.get(term, 0.0)
