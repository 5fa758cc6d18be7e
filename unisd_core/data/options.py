"""Seeded per-item shuffling of multiple-choice options (method.md 5).

The RNG is keyed by the item, not by its position in a file: the same item gets the same option
order from bundled, local and hf sources, whatever their order or subset.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from unisd_core.data.schema import DataError

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Shuffled:
    options: tuple[str, ...]
    answer: str  # the correct option's letter after shuffling
    order: list[int]  # order[i] = original index of the option shown at position i


def item_seed(seed: int, key: str) -> int:
    """A deterministic per-item seed (crc32 of the key: stable across Python processes)."""
    return seed + zlib.crc32(key.encode("utf-8"))


def shuffle_options(
    options: Sequence[str], answer_index: int, *, seed: int, key: str, origin: str
) -> Shuffled:
    if not 2 <= len(options) <= len(LETTERS):
        raise DataError(f"{origin}: {len(options)} options; expected 2 to {len(LETTERS)}")
    if not 0 <= answer_index < len(options):
        raise DataError(f"{origin}: answer index {answer_index} is outside the options")
    order = list(range(len(options)))
    random.Random(item_seed(seed, key)).shuffle(order)
    return Shuffled(
        options=tuple(str(options[i]) for i in order),
        answer=LETTERS[order.index(answer_index)],
        order=order,
    )
