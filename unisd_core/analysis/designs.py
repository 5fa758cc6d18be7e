"""Ablation designs: which configurations to run, crossed with seeds, and what each design aliases.

A design lists configurations (one boolean column per factor: True = high level / component on)
and the seeds every configuration is run with. Regular fractional factorials also carry their
generators, defining relation and resolution, so the user sees before spending GPU-hours which
effects the design will not be able to tell apart.

Effect words are written with factor names joined by ``:`` (``agreement:ema``), the same names
:func:`unisd_core.analysis.factorial_effects` uses for its terms.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from unisd_core.analysis.errors import AnalysisError

Word = frozenset[int]

# Searching generator sets is combinatorial; past this many candidate sets we ask the user for
# explicit generators instead of hanging.
_MAX_GENERATOR_SETS = 200_000


@dataclass(frozen=True, eq=False)
class Design:
    """A set of configurations crossed with seeds.

    ``configs`` has a ``config`` label column and one boolean column per factor. ``runs()`` crosses
    it with ``seeds``. For regular fractions, ``generators`` maps each generated factor to the
    word it is built from, ``defining_relation`` lists the words equal to the identity, and
    ``resolution`` is the length of the shortest such word.
    """

    kind: str
    factors: tuple[str, ...]
    configs: pd.DataFrame
    seeds: tuple[int, ...]
    generators: Mapping[str, str] = field(default_factory=dict)
    defining_relation: tuple[str, ...] = ()
    resolution: int | None = None

    @property
    def n_configs(self) -> int:
        return len(self.configs)

    def run_count(self, benchmarks: int = 1) -> int:
        """Runs to queue: configurations x seeds x training benchmarks."""
        if benchmarks < 1:
            raise AnalysisError("benchmarks must be at least 1")
        return self.n_configs * len(self.seeds) * benchmarks

    def gpu_hours(self, hours_per_run: float, benchmarks: int = 1) -> float:
        """A budget estimate: run count times the measured (or guessed) hours of one run."""
        return self.run_count(benchmarks) * hours_per_run

    def runs(self) -> pd.DataFrame:
        """One row per (configuration, seed), configuration-major, with a ``seed`` column."""
        repeated = self.configs.loc[self.configs.index.repeat(len(self.seeds))]
        repeated = repeated.reset_index(drop=True)
        repeated["seed"] = np.tile(np.asarray(self.seeds, dtype=int), self.n_configs)
        return repeated

    def aliases(self, max_order: int = 2) -> dict[str, tuple[str, ...]]:
        """Aliases of every main effect and two-factor interaction.

        For each effect the words of order <= ``max_order`` that the design cannot separate from
        it. Designs without a defining relation (full factorials) alias nothing; one-at-a-time
        style layouts are not regular fractions, so their aliasing shows up in the analysis
        (``factorial_effects``'s ``aliased_with``) instead.
        """
        words = [_parse_word(w, self.factors) for w in self.defining_relation]
        result: dict[str, tuple[str, ...]] = {}
        for effect in _effects_up_to(len(self.factors), 2):
            partners = sorted(
                (effect ^ w for w in words if 0 < len(effect ^ w) <= max_order),
                key=lambda x: (len(x), sorted(x)),
            )
            result[_name(effect, self.factors)] = tuple(_name(p, self.factors) for p in partners)
        return result

    def alias_table(self, max_order: int = 3) -> pd.DataFrame:
        """``term``, ``aliased_with`` (``, ``-joined) for mains and two-factor interactions."""
        rows = [
            {"term": term, "aliased_with": ", ".join(partners)}
            for term, partners in self.aliases(max_order).items()
        ]
        return pd.DataFrame(rows, columns=["term", "aliased_with"])


# ----------------------------------------------------------------------------- constructors


def full_factorial(factors: Sequence[str], seeds: int | Sequence[int] = 1) -> Design:
    """All 2^k on/off combinations, in standard order (the first factor alternates fastest)."""
    names = _check_factors(factors)
    levels = _standard_order(len(names))
    return Design(
        kind="full",
        factors=names,
        configs=_configs_frame(names, levels > 0),
        seeds=_seeds(seeds),
        resolution=None,
    )


def fractional_factorial(
    factors: Sequence[str],
    *,
    resolution: int | None = None,
    n_runs: int | None = None,
    generators: Mapping[str, str | Sequence[str]] | None = None,
    seeds: int | Sequence[int] = 1,
) -> Design:
    """A regular two-level fraction 2^(k-p), principal fraction (all generator signs +).

    Give exactly one of:

    - ``generators``: ``{"E": "A:B:C"}`` (or a list of names); the generated factors are built
      from the others, which form a full factorial.
    - ``resolution``: the smallest fraction whose resolution is exactly that (for k=5,
      ``resolution=5`` gives 16 runs with ``E = A:B:C:D`` and ``resolution=4`` 16 runs with
      ``E = A:B:C``); among candidates, minimum aberration (fewest shortest aliasing words).
    - ``n_runs``: a power of two; the highest resolution, then minimum aberration, of that size.
    """
    names = _check_factors(factors)
    chosen = sum(x is not None for x in (resolution, n_runs, generators))
    if chosen != 1:
        raise AnalysisError("give exactly one of resolution, n_runs or generators")
    k = len(names)
    if generators is not None:
        generated = _parse_generators(generators, names)
    elif n_runs is not None:
        generated = _search_by_size(k, n_runs)
    else:
        assert resolution is not None
        generated = _search_by_resolution(k, resolution)
    return _build_fraction(names, generated, _seeds(seeds))


def one_at_a_time(factors: Sequence[str], seeds: int | Sequence[int] = 1) -> Design:
    """The base configuration (all off) and each factor switched on alone: k + 1 configurations."""
    names = _check_factors(factors)
    k = len(names)
    on = np.vstack([np.zeros(k, dtype=bool), np.eye(k, dtype=bool)])
    labels = ["base", *names]
    return Design(
        kind="one_at_a_time",
        factors=names,
        configs=_configs_frame(names, on, labels),
        seeds=_seeds(seeds),
    )


def paper_layout(
    factors: Sequence[str],
    seeds: int | Sequence[int] = 1,
    *,
    all_label: str = "unisd_star",
) -> Design:
    """The paper's ablation table: base, each component alone, and all components on (UniSD*)."""
    names = _check_factors(factors)
    k = len(names)
    on = np.vstack([np.zeros(k, dtype=bool), np.eye(k, dtype=bool), np.ones(k, dtype=bool)])
    labels = ["base", *names, all_label]
    return Design(
        kind="paper",
        factors=names,
        configs=_configs_frame(names, on, labels),
        seeds=_seeds(seeds),
    )


def estimate_run_count(
    kind: str,
    factors: Sequence[str],
    seeds: int | Sequence[int] = 1,
    *,
    benchmarks: int = 1,
    resolution: int | None = None,
    n_runs: int | None = None,
) -> int:
    """Run count of a design without the caller building it (what the ablation form shows)."""
    if kind == "full":
        design = full_factorial(factors, seeds)
    elif kind == "fractional":
        design = fractional_factorial(factors, resolution=resolution, n_runs=n_runs, seeds=seeds)
    elif kind == "one_at_a_time":
        design = one_at_a_time(factors, seeds)
    elif kind == "paper":
        design = paper_layout(factors, seeds)
    else:
        raise AnalysisError(
            f"unknown design kind {kind!r}; use full, fractional, one_at_a_time or paper"
        )
    return design.run_count(benchmarks)


# ----------------------------------------------------------------------------- word algebra


def defining_relation(generated: Mapping[int, Word]) -> list[Word]:
    """All non-empty products of the defining words ``{generated factor} + its generator``."""
    basic = [word | {target} for target, word in generated.items()]
    relation: list[Word] = []
    for size in range(1, len(basic) + 1):
        for combo in itertools.combinations(basic, size):
            product: Word = frozenset()
            for w in combo:
                product = product ^ w  # a factor squared is the identity: symmetric difference
            relation.append(product)
    return relation


def word_length_pattern(relation: Iterable[Word], k: int) -> tuple[int, ...]:
    """Counts of defining words of length 3, 4, ..., k (compared to rank aberration)."""
    counts = [0] * (k + 1)
    for w in relation:
        counts[len(w)] += 1
    return tuple(counts[3:])


def _resolution(relation: Sequence[Word]) -> int:
    return min(len(w) for w in relation)


def _effects_up_to(k: int, order: int) -> list[Word]:
    return [frozenset(c) for n in range(1, order + 1) for c in itertools.combinations(range(k), n)]


def _name(word: Word, names: Sequence[str]) -> str:
    return ":".join(names[i] for i in sorted(word))


def _parse_word(text: str, names: Sequence[str]) -> Word:
    index = {n: i for i, n in enumerate(names)}
    return frozenset(index[part] for part in text.split(":"))


# ----------------------------------------------------------------------------- fractions


def _build_fraction(
    names: tuple[str, ...], generated: dict[int, Word], seeds: tuple[int, ...]
) -> Design:
    k = len(names)
    base_factors = [i for i in range(k) if i not in generated]
    base_levels = _standard_order(len(base_factors))
    levels = np.empty((len(base_levels), k))
    levels[:, base_factors] = base_levels
    for target, word in generated.items():
        position = [base_factors.index(i) for i in word]
        levels[:, target] = np.prod(base_levels[:, position], axis=1)
    relation = defining_relation(generated)
    ordered = sorted(relation, key=lambda w: (len(w), sorted(w)))
    return Design(
        kind="fractional",
        factors=names,
        configs=_configs_frame(names, levels > 0),
        seeds=seeds,
        generators={names[t]: _name(w, names) for t, w in sorted(generated.items())},
        defining_relation=tuple(_name(w, names) for w in ordered),
        resolution=_resolution(relation),
    )


def _parse_generators(
    generators: Mapping[str, str | Sequence[str]], names: tuple[str, ...]
) -> dict[int, Word]:
    index = {n: i for i, n in enumerate(names)}
    generated: dict[int, Word] = {}
    for factor, spec in generators.items():
        if factor not in index:
            raise AnalysisError(f"generated factor {factor!r} is not one of the factors")
        parts = spec.split(":") if isinstance(spec, str) else list(spec)
        unknown = [p for p in parts if p not in index]
        if unknown:
            raise AnalysisError(f"generator of {factor!r} names unknown factor(s): {unknown}")
        generated[index[factor]] = frozenset(index[p] for p in parts)
    for position, word in generated.items():
        target = position
        if len(word) < 2:
            raise AnalysisError(
                f"generator of {names[target]!r} must multiply at least two base factors, "
                "otherwise it duplicates a factor"
            )
        clash = [names[i] for i in word if i in generated]
        if clash or target in word:
            raise AnalysisError(
                f"generator of {names[target]!r} must use only base (non-generated) factors; "
                f"it uses {clash or [names[target]]}"
            )
    if len(generated) >= len(names):
        raise AnalysisError("at least one factor must be a base factor")
    if len(set(generated.values())) < len(generated):
        raise AnalysisError("two generated factors share a generator: they would be identical")
    return generated


def _candidate_sets(k: int, p: int, min_word: int) -> Iterable[dict[int, Word]]:
    """Generator assignments for the last p factors from words over the first k - p."""
    m = k - p
    words = [
        frozenset(c)
        for n in range(max(2, min_word), m + 1)
        for c in itertools.combinations(range(m), n)
    ]
    if len(words) < p:
        return []
    if math.comb(len(words), p) > _MAX_GENERATOR_SETS:
        raise AnalysisError(
            f"too many candidate generator sets for k={k}, p={p}; pass generators explicitly"
        )
    # Generated factors are interchangeable, so unordered choices of words cover every design.
    return ({m + j: w for j, w in enumerate(combo)} for combo in itertools.combinations(words, p))


def _best(
    candidates: Iterable[dict[int, Word]], k: int, exact_resolution: int | None
) -> dict[int, Word] | None:
    best: tuple[tuple[int, ...], dict[int, Word]] | None = None
    for generated in candidates:
        relation = defining_relation(generated)
        res = _resolution(relation)
        if exact_resolution is not None and res != exact_resolution:
            continue
        # Higher resolution first, then lexicographically smallest word length pattern.
        rank = (-res, *word_length_pattern(relation, k))
        if best is None or rank < best[0]:
            best = (rank, generated)
    return None if best is None else best[1]


def _search_by_resolution(k: int, resolution: int) -> dict[int, Word]:
    if resolution < 3:
        raise AnalysisError("resolution must be at least 3 (III): main effects must not alias")
    for p in range(k - 1, 0, -1):
        if 2 ** (k - p) <= k:  # too few runs to estimate every main effect
            continue
        # A defining word is the generator plus its target, so generators need resolution-1 base
        # factors; shorter ones could only lower the resolution.
        found = _best(_candidate_sets(k, p, resolution - 1), k, exact_resolution=resolution)
        if found is not None:
            return found
    raise AnalysisError(
        f"no regular two-level fraction of {k} factors has resolution exactly {resolution}; "
        "use full_factorial or another resolution"
    )


def _search_by_size(k: int, n_runs: int) -> dict[int, Word]:
    if n_runs < 2 or n_runs & (n_runs - 1):
        raise AnalysisError(f"n_runs must be a power of two, got {n_runs}")
    p = k - int(math.log2(n_runs))
    if p < 1:
        raise AnalysisError(
            f"{n_runs} runs is a full factorial (or more) for {k} factors; use full_factorial"
        )
    if n_runs <= k:
        raise AnalysisError(f"{n_runs} runs cannot estimate {k} main effects; use more runs")
    found = _best(_candidate_sets(k, p, 2), k, exact_resolution=None)
    if found is None:
        raise AnalysisError(f"no regular fraction of {k} factors in {n_runs} runs")
    return found


# ----------------------------------------------------------------------------- helpers


def _check_factors(factors: Sequence[str]) -> tuple[str, ...]:
    if isinstance(factors, str):
        raise AnalysisError("factors must be a list of names, not one string")
    names = tuple(factors)
    if not names:
        raise AnalysisError("a design needs at least one factor")
    if len(set(names)) < len(names):
        raise AnalysisError("factor names must be unique")
    bad = [n for n in names if not n or ":" in n or n in {"config", "seed"}]
    if bad:
        raise AnalysisError(
            f"factor names must be non-empty, without ':' and not 'config'/'seed': {bad}"
        )
    return names


def _seeds(seeds: int | Sequence[int]) -> tuple[int, ...]:
    # An int is a count (seeds 0..n-1), which is what an ablation form asks for.
    values = tuple(range(seeds)) if isinstance(seeds, int) else tuple(int(s) for s in seeds)
    if not values:
        raise AnalysisError("a design needs at least one seed")
    if len(set(values)) < len(values):
        raise AnalysisError(f"seeds must be distinct, got {list(values)}")
    return values


def _standard_order(k: int) -> np.ndarray:
    """2^k x k matrix of -1/+1 in Yates order: column j flips every 2^j rows."""
    rows = np.arange(2**k)[:, None]
    return np.where((rows >> np.arange(k)) & 1, 1.0, -1.0)


def _configs_frame(
    names: Sequence[str], on: np.ndarray, labels: Sequence[str] | None = None
) -> pd.DataFrame:
    frame = pd.DataFrame(on.astype(bool), columns=list(names))
    if labels is None:
        labels = [
            "+".join(n for n, flag in zip(names, row, strict=True) if flag) or "base" for row in on
        ]
    frame.insert(0, "config", list(labels))
    return frame
