"""HTTP routes for runs: thin wiring over `backend.runs.service` and `backend.metrics.service`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from backend.db.models import Run
from backend.db.session import read_without_transaction
from backend.deps import (
    PathId,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    authenticate,
    json_body_openapi,
    parse_json_body,
)
from backend.metrics import service as metrics
from backend.queue import send_train_run
from backend.responses import json_response
from backend.runs import service
from backend.runs.schemas import (
    METRIC_BATCH,
    IngestResult,
    LatestOut,
    RunClone,
    RunCreateFromPreset,
    RunEventOut,
    RunEvents,
    RunList,
    RunMetrics,
    RunOut,
    RunSort,
    RunUpdate,
)
from backend.settings import Settings
from unisd_core.config import RunConfig, deep_merge

router = APIRouter(prefix="/runs", tags=["runs"])
#: The busiest routes (the metrics ingest, the run list the runs table polls) authenticate in
#: their handler, in the same trip to the thread pool as their work: `backend.main` mounts this
#: router without the `current_principal` dependency the other routers get.
self_authenticating_router = APIRouter(prefix="/runs", tags=["runs"])

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
MAX_INT = 2**31 - 1
RunId = Annotated[int, Query(ge=1, le=MAX_INT)]


def run_out(session: Session, run: Run, *, with_position: bool = False) -> RunOut:
    out = RunOut.model_validate(run)
    if with_position:
        out.queue_position = service.queue_position(session, run)
    return out


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RunOut)
def create_run(
    config: RunConfig,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    experiment_id: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    tag: Annotated[list[str] | None, Query(max_length=64)] = None,
) -> RunOut:
    """Queue a run of `config` (a full RunConfig; `preset` starts from that recipe)."""
    principal.require_write()
    tags = service.check_tags_or_422(tag or [])
    run = service.create_run(
        session,
        config,
        default_queue=settings.default_queue,
        principal=principal,
        experiment_id=experiment_id,
        tags=tags,
    )
    session.commit()  # the worker must find the row before the task arrives
    send_train_run(settings, run.id, run.queue)
    return run_out(session, run)


@router.post("/from-preset", status_code=status.HTTP_201_CREATED, response_model=RunOut)
def create_from_preset(
    body: RunCreateFromPreset, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> RunOut:
    """Queue a run from a preset plus overrides (nested values or `a.b=v` strings)."""
    principal.require_write()
    raw = deep_merge({"preset": body.preset}, service.overrides_dict(body.overrides))
    if body.name is not None:
        raw["name"] = body.name
    config = service.build_config(raw, prefix="overrides.")
    run = service.create_run(
        session,
        config,
        default_queue=settings.default_queue,
        principal=principal,
        experiment_id=body.experiment_id,
        tags=body.tags,
        notes=body.notes,
    )
    session.commit()
    send_train_run(settings, run.id, run.queue)
    return run_out(session, run)


@self_authenticating_router.get("", response_model=RunList)
async def list_runs(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    status_filter: Annotated[list[Status] | None, Query(alias="status")] = None,
    experiment_id: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    sweep_id: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    created_by: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    tag: Annotated[list[str] | None, Query(max_length=64)] = None,
    agreement: bool | None = None,
    ema: bool | None = None,
    contrastive: bool | None = None,
    feature_matching: bool | None = None,
    clipping: bool | None = None,
    base_model: Annotated[str | None, Query(max_length=500)] = None,
    benchmark: Annotated[str | None, Query(max_length=64, description="Training dataset.")] = None,
    preset: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text search.")] = None,
    ids: Annotated[str, Query(max_length=5000, description="Comma-separated run ids.")] = "",
    include_deleted: bool = False,
    latest: Annotated[
        str, Query(max_length=5000, description="Comma-separated keys: add their latest values.")
    ] = "",
    include_config: bool = True,
    sort: RunSort = "-id",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Response:
    components = {
        name: value
        for name, value in (
            ("agreement", agreement),
            ("ema", ema),
            ("contrastive", contrastive),
            ("feature_matching", feature_matching),
            ("clipping", clipping),
        )
        if value is not None
    }

    def read() -> Response:
        read_without_transaction(session)  # the token check and the one query below
        authenticate(request, session, settings)
        filters = service.RunFilter(
            statuses=list(status_filter or []),
            experiment_id=experiment_id,
            sweep_id=sweep_id,
            created_by=created_by,
            tags=list(tag or []),
            components=components,
            base_model=base_model,
            dataset=benchmark,
            preset=preset,
            q=q,
            ids=metrics.parse_ids(ids, field="ids") if ids else [],
            include_deleted=include_deleted,
        )
        latest_keys = metrics.parse_list(latest, field="latest", limit=metrics.MAX_KEYS_PER_QUERY)
        rows, total = service.list_run_rows(
            session,
            filters,
            limit=limit,
            offset=offset,
            sort=sort,
            include_config=include_config,
            latest_keys=latest_keys,
        )
        session.commit()  # ends the read here, in this thread (keeps a token's last use)
        # RunList's shape from typed columns, without a model per run (a page holds up to
        # 1,000; validating and re-validating them was most of the route's time). A test
        # checks that the body is a fixed point of RunList validation.
        return json_response({"items": rows, "total": total, "limit": limit, "offset": offset})

    # The runs table polls this: authenticated, read and answered in one thread-pool trip (as
    # a sync route behind the principal dependency it took three, see `ingest_metrics`).
    return await run_in_threadpool(read)


@router.get("/{run_id}", response_model=RunOut)
def get_run(run_id: PathId, session: SessionDep, include_deleted: bool = False) -> RunOut:
    run = service.get_run(session, run_id, include_deleted=include_deleted)
    return run_out(session, run, with_position=True)


@router.patch("/{run_id}", response_model=RunOut)
def update_run(
    run_id: PathId, body: RunUpdate, principal: PrincipalDep, session: SessionDep
) -> RunOut:
    """Rename, change notes, replace tags, or move the run to another experiment."""
    run = service.update_run(session, run_id, principal, body.model_dump(exclude_unset=True))
    return run_out(session, run)


@router.delete("/{run_id}", response_model=RunOut)
def delete_run(run_id: PathId, principal: PrincipalDep, session: SessionDep) -> RunOut:
    """Soft delete (hidden from lists; `include_deleted=true` shows it). Cancels it if needed."""
    return run_out(session, service.delete_run(session, run_id, principal))


@router.post("/{run_id}/cancel", response_model=RunOut)
def cancel_run(run_id: PathId, principal: PrincipalDep, session: SessionDep) -> RunOut:
    return run_out(session, service.cancel_run(session, run_id, principal))


@router.post("/{run_id}/retry", response_model=RunOut)
def retry_run(
    run_id: PathId, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> RunOut:
    """Queue a failed or cancelled run again (it resumes from its last checkpoint)."""
    run = service.retry_run(session, run_id, principal)
    session.commit()
    send_train_run(settings, run.id, run.queue)
    return run_out(session, run, with_position=True)


@router.post("/{run_id}/clone", status_code=status.HTTP_201_CREATED, response_model=RunOut)
def clone_run(
    run_id: PathId,
    body: RunClone,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
) -> RunOut:
    """A new run from this run's config with `overrides` merged in."""
    principal.require_write()
    run = service.clone_run(
        session,
        run_id,
        principal,
        overrides=service.overrides_dict(body.overrides),
        default_queue=settings.default_queue,
        name=body.name,
        experiment_id=body.experiment_id,
        tags=body.tags,
    )
    session.commit()
    send_train_run(settings, run.id, run.queue)
    return run_out(session, run)


@router.get("/{run_id}/events", response_model=RunEvents)
def run_events(
    run_id: PathId,
    session: SessionDep,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> RunEvents:
    """The run's log, oldest first; poll with `after_id=next_after_id` for new lines."""
    rows, next_id = service.run_events(session, run_id, after_id=after_id, limit=limit)
    return RunEvents(items=[RunEventOut.model_validate(e) for e in rows], next_after_id=next_id)


@router.get("/{run_id}/metrics", response_model=RunMetrics)
def get_metrics(
    run_id: PathId,
    session: SessionDep,
    keys: Annotated[
        str, Query(max_length=20_000, description="Comma-separated metric keys; empty: all.")
    ] = "",
    max_points: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="Downsample to at most N points, keeping extremes."),
    ] = None,
) -> Response:
    service.run_owner(session, run_id, include_deleted=True)
    wanted = metrics.parse_list(keys, field="keys", limit=metrics.MAX_KEYS_PER_QUERY)
    series = metrics.run_series(session, run_id, wanted, max_points)
    # RunMetrics's shape, written directly: typed columns need no second validation.
    return json_response(
        {"run_id": run_id, "metrics": {k: metrics.points_json(pts) for k, pts in series.items()}}
    )


@self_authenticating_router.post(
    "/{run_id}/metrics", response_model=IngestResult, openapi_extra=json_body_openapi(METRIC_BATCH)
)
async def ingest_metrics(
    run_id: PathId, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """Log points from a script or an external trainer; idempotent on (run, key, step)."""
    # The hot path of every logging script. As the other routes would do through their
    # dependencies, the caller is authenticated before the body is validated (401 before 422,
    # and no parsing for strangers), then the run is checked, the points stored and committed:
    # all of it in one trip to the thread pool. Through dependencies it was three trips (the
    # principal, the route, FastAPI's validation of the result), and on a loaded machine each
    # trip waits for the scheduler twice.
    body = await request.body()
    received, inserted = await run_in_threadpool(_ingest, request, body, run_id, session, settings)
    return json_response({"received": received, "inserted": inserted})


def _ingest(
    request: Request, body: bytes, run_id: int, session: Session, settings: Settings
) -> tuple[int, int]:
    metrics.open_ingest(session)
    principal = authenticate(request, session, settings)
    points = parse_json_body(request, body, METRIC_BATCH)["points"]
    owner = service.run_owner(session, run_id)
    principal.require_owner_or_admin(owner, f"run {run_id}")
    # The transaction writes metric points only (and at most a token's last-used time), as
    # a non-durable commit requires.
    inserted = metrics.ingest(session, run_id, points, durable=settings.ingest_durable_commit)
    session.commit()
    return len(points), inserted


@router.get("/{run_id}/metrics/latest", response_model=dict[str, LatestOut])
def latest_metrics(run_id: PathId, session: SessionDep) -> dict[str, LatestOut]:
    service.run_owner(session, run_id, include_deleted=True)
    return metrics.latest_table(session, [run_id], []).get(run_id, {})
