"""Artifacts: list a run's files and resolve one for download, refusing any path outside the
configured artifact roots (no traversal through names, URIs or symlinks)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.models import Artifact
from backend.errors import AppError, Forbidden, NotFound
from backend.runs.service import get_run


class NotAFile(AppError):
    status_code = 409
    code = "not_a_file"


def list_artifacts(session: Session, run_id: int) -> list[Artifact]:
    get_run(session, run_id)
    return list(
        session.scalars(
            select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.kind, Artifact.name)
        )
    )


def resolve_download(
    session: Session, run_id: int, name: str, roots: list[Path]
) -> tuple[Artifact, Path]:
    get_run(session, run_id)
    artifact = session.scalar(
        select(Artifact).where(Artifact.run_id == run_id, Artifact.name == name)
    )
    if artifact is None:
        raise NotFound(f"run {run_id} has no artifact named {name[:200]!r}")
    path = local_path(artifact.uri)
    if path is None or not is_within(path, roots):
        raise Forbidden("this artifact is not stored where the server may serve files from")
    if not path.is_file():
        raise NotAFile(f"artifact {name[:200]!r} is a directory or missing; fetch it from {path}")
    return artifact, path


def local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            return None
        raw = unquote(parsed.path)
    elif parsed.scheme == "":
        raw = uri
    else:
        return None
    if "\x00" in raw:
        return None
    return Path(raw)


def is_within(path: Path, roots: list[Path]) -> bool:
    """True when `path`, with every symlink and `..` resolved, lies inside one of `roots`."""
    try:
        real = path.resolve(strict=False)
    except (OSError, RuntimeError):
        return False
    return any(real.is_relative_to(root.resolve()) for root in roots)
