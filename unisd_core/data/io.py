"""Readers for the original file formats, with errors that name the file, line and field.

Every reader yields `(origin, record)` pairs where `origin` is "file:line" (or "file[index]" for
JSON arrays and objects): loaders put it in their error messages so a user can open the record.
Gzipped files (`*.gz`) are read transparently.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from unisd_core.data.schema import DataError

Record = Mapping[str, Any]


def _open_text(path: Path) -> IO[str]:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def find_file(directory: Path, *names: str) -> Path:
    """The first of `names` (plain or gzipped) that exists in `directory`."""
    for name in names:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    wanted = " or ".join(names)
    raise DataError(f"data file not found: {wanted} (plain or .gz) in {directory}")


def read_jsonl(path: Path) -> Iterator[tuple[str, Record]]:
    with _open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            origin = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{origin}: invalid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise DataError(f"{origin}: expected a JSON object, got {type(record).__name__}")
            yield origin, record


def read_json(path: Path) -> Any:
    with _open_text(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc


def read_json_records(path: Path) -> Iterator[tuple[str, Record]]:
    """A JSON array of objects, or an object of objects keyed by id (the key is added as `_key`)."""
    data = read_json(path)
    if isinstance(data, list):
        items: list[tuple[str, Any]] = [(f"{path}[{i}]", r) for i, r in enumerate(data)]
    elif isinstance(data, dict):
        items = [
            (f"{path}[{k!r}]", {**r, "_key": k} if isinstance(r, dict) else r)
            for k, r in data.items()
        ]
    else:
        raise DataError(f"{path}: expected a JSON array or object, got {type(data).__name__}")
    for origin, record in items:
        if not isinstance(record, dict):
            raise DataError(f"{origin}: expected a JSON object, got {type(record).__name__}")
        yield origin, record


def read_records(path: Path) -> Iterator[tuple[str, Record]]:
    """Records of a `.jsonl`, `.json` or `.csv` file (maybe `.gz`), chosen by the file name.

    Some upstream ".json" files (MedMCQA) are really JSON lines: a document that fails to parse
    with "Extra data" is read again line by line.
    """
    name = path.name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        return read_jsonl(path)
    if name.endswith(".csv"):
        return read_csv(path)
    if name.endswith(".json"):
        with _open_text(path) as handle:
            text = handle.read()
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data":
                return read_jsonl(path)
            raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
        return read_json_records(path)
    raise DataError(f"{path}: unsupported file type (expected .jsonl, .json or .csv, maybe .gz)")


def read_csv(path: Path) -> Iterator[tuple[str, Record]]:
    """CSV with a header row; cells may hold newlines, so origins count records, not lines."""
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        for index, row in enumerate(reader, start=2):
            origin = f"{path}:record {index - 1} (ends on line {reader.line_num})"
            if None in row:
                raise DataError(f"{origin}: more cells than header columns")
            yield origin, row


def field(record: Record, name: str, origin: str, kind: type | tuple[type, ...] = str) -> Any:
    """A required field of the expected type, or a DataError naming origin and field."""
    if name not in record:
        raise DataError(f"{origin}: missing field {name!r}")
    value = record[name]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise DataError(
            f"{origin}: field {name!r} should be {expected}, got {type(value).__name__}"
        )
    return value


def optional_text(record: Record, name: str) -> str:
    """A free-text field that may be absent or null (explanations, hints)."""
    value = record.get(name)
    return "" if value is None else str(value)


def split_name(benchmark: str, split: str, splits: Mapping[str, str]) -> str:
    """The file/config name of a user-facing split, or a DataError listing the valid ones."""
    if split not in splits:
        raise DataError(f"{benchmark} has no split {split!r}; choose one of {sorted(splits)}")
    return splits[split]
