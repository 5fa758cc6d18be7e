"""A run's artifacts: list, and download by name."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from backend.artifacts import service
from backend.artifacts.schemas import ArtifactOut
from backend.deps import PathId, SessionDep, SettingsDep

router = APIRouter(prefix="/runs/{run_id}/artifacts", tags=["artifacts"])


@router.get("", response_model=list[ArtifactOut])
def list_artifacts(run_id: PathId, session: SessionDep) -> list[ArtifactOut]:
    return [ArtifactOut.model_validate(a) for a in service.list_artifacts(session, run_id)]


@router.get(
    "/{name:path}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download(run_id: PathId, name: str, session: SessionDep, settings: SettingsDep) -> FileResponse:
    _, path = service.resolve_download(session, run_id, name, settings.allowed_artifact_roots)
    return FileResponse(path, filename=path.name, media_type="application/octet-stream")
