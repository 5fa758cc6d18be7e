"""Element ids of the studio, in one place: tests and shareable links address components by them."""

from __future__ import annotations


class ElementIds:
    """Hands out `<tab>-<name>` ids and refuses duplicates (two components, one id, is a bug)."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def __call__(self, tab: str, name: str) -> str:
        elem_id = f"{tab}-{name}".replace(".", "-").replace("_", "-")
        if elem_id in self._taken:
            raise ValueError(f"element id {elem_id!r} is used twice")
        self._taken.add(elem_id)
        return elem_id

    def __contains__(self, elem_id: str) -> bool:
        return elem_id in self._taken

    @property
    def taken(self) -> frozenset[str]:
        return frozenset(self._taken)
