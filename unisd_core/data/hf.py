"""Rows of a Hugging Face dataset, for users with internet. `datasets` is imported lazily: it is
not a dependency of UniSD Studio, and offline machines use the bundled or local sources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from unisd_core.data.io import Record
from unisd_core.data.schema import DataError


def hf_rows(dataset_id: str, config: str | None, split: str) -> Iterator[tuple[str, Record]]:
    try:
        import datasets
    except ImportError as exc:
        raise DataError(
            "data source 'hf' needs the `datasets` package (pip install datasets); without "
            "internet use source 'bundled' or 'local:<dir>'"
        ) from exc
    try:
        rows: Any = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as exc:  # hub errors have many types; all mean "not loadable from here"
        raise DataError(
            f"could not load {dataset_id} (config {config}, split {split}) from the Hugging Face "
            f"hub: {exc.__class__.__name__}: {exc}. Offline, use source 'bundled' or 'local:<dir>'"
        ) from exc
    name = f"hf:{dataset_id}" + (f"/{config}" if config else "")
    for index, row in enumerate(rows):
        yield f"{name}[{split}][{index}]", dict(row)
