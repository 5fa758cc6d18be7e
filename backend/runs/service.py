"""Run lifecycle rules for the API: create, list, get, cancel, retry, clone, delete, edit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, bindparam, func, or_, select
from sqlalchemy.orm import Session

from backend.auth.service import Principal
from backend.db import repositories
from backend.db.base import utcnow
from backend.db.models import (
    COMPONENT_FLAGS,
    FINISHED_STATUSES,
    Experiment,
    MetricLatest,
    Run,
    RunEvent,
    RunTag,
)
from backend.errors import AppError, Conflict, NotFound
from backend.queue import queue_for
from unisd_core.config import RunConfig, deep_merge, parse_overrides


class InvalidConfig(AppError):
    status_code = 422
    code = "validation_error"


def component_flags(config: RunConfig) -> dict[str, bool]:
    """The five component switches of a config (False for blocks a config does not have)."""
    return {
        name: bool(getattr(getattr(config, name, None), "enabled", False))
        for name in COMPONENT_FLAGS
    }


def run_from_config(config: RunConfig, *, default_queue: str) -> Run:
    """A new queued run row for `config` (not added to a session).

    The queue follows the config's resources (cpu, gpu, gpu-xN); `default_queue` serves configs
    that leave the device to the deployment.
    """
    train = config.train
    resources = getattr(config, "resources", None)
    return Run(
        name=config.name,
        status="queued",
        config=config.model_dump(mode="json"),
        config_hash=config.config_hash(),
        preset=config.preset,
        base_model=config.model.name_or_path,
        dataset=config.data.benchmark,
        seed=train.seed,
        queue=queue_for(config, default_queue),
        total_steps=getattr(train, "max_steps", None) or 0,
        gpus=int(getattr(resources, "gpus", 1) or 1),
        **component_flags(config),
    )


def build_config(raw: Mapping[str, Any], *, prefix: str = "") -> RunConfig:
    """Validate a config dict; errors become a 422 naming each field (under `prefix`)."""
    try:
        return RunConfig.model_validate(dict(raw))
    except ValidationError as exc:
        from backend.errors import validation_fields

        fields = validation_fields(list(exc.errors()))
        for f in fields:
            f["path"] = f"{prefix}{f['path']}" if f["path"] != "body" else prefix.rstrip(".")
        raise InvalidConfig(
            "; ".join(f"{f['path']}: {f['message']}" for f in fields[:5]), fields=fields
        ) from None
    except (ValueError, TypeError) as exc:
        fields = [{"path": prefix.rstrip(".") or "body", "message": str(exc)}]
        raise InvalidConfig(str(exc), fields=fields) from None


def overrides_dict(overrides: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        return dict(overrides)
    try:
        return parse_overrides(overrides)
    except ValueError as exc:
        raise InvalidConfig(str(exc), fields=[{"path": "overrides", "message": str(exc)}]) from None


def create_run(
    session: Session,
    config: RunConfig,
    *,
    default_queue: str,
    principal: Principal | None = None,
    experiment_id: int | None = None,
    tags: Sequence[str] = (),
    notes: str | None = None,
    parent_run_id: int | None = None,
) -> Run:
    if experiment_id is not None:
        check_experiment(session, experiment_id)
    run = run_from_config(config, default_queue=default_queue)
    run.created_by = principal.user_id if principal else None
    run.experiment_id = experiment_id
    run.notes = notes
    run.parent_run_id = parent_run_id
    run.tag_rows = [RunTag(tag=t) for t in sorted(set(tags))]
    session.add(run)
    session.flush()
    return run


def check_tags_or_422(tags: Sequence[str]) -> list[str]:
    from backend.runs.schemas import check_tags

    try:
        return check_tags(list(tags))
    except ValueError as exc:
        raise InvalidConfig(str(exc), fields=[{"path": "tag", "message": str(exc)}]) from None


def check_experiment(session: Session, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound(
            f"experiment {experiment_id} does not exist",
            fields=[{"path": "experiment_id", "message": "no such experiment"}],
        )
    if experiment.archived_at is not None:
        raise Conflict(
            f"experiment {experiment_id} is archived",
            fields=[{"path": "experiment_id", "message": "archived"}],
        )
    return experiment


def get_run(session: Session, run_id: int, *, include_deleted: bool = False) -> Run:
    run = session.get(Run, run_id)
    if run is None or (run.deleted_at is not None and not include_deleted):
        raise NotFound(f"run {run_id} does not exist")
    return run


# Built once (the ingest and read paths run it on every request): building it cost more
# than running it.
_RUN_OWNER = select(Run.created_by, Run.deleted_at).where(Run.id == bindparam("run_id"))


def run_owner(session: Session, run_id: int, *, include_deleted: bool = False) -> int | None:
    """The creator of a run that exists (None for runs created without a user), else 404.

    For routes that only check the run: two columns instead of the whole row with its config
    and tags (the ingest and read paths call this on every request).
    """
    row = session.connection().execute(_RUN_OWNER, {"run_id": run_id}).first()
    if row is None or (row.deleted_at is not None and not include_deleted):
        raise NotFound(f"run {run_id} does not exist")
    return row.created_by


def queue_position(session: Session, run: Run) -> int | None:
    if run.status != "queued":
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(Run)
        .where(
            Run.status == "queued",
            Run.queue == run.queue,
            Run.id < run.id,
            Run.deleted_at.is_(None),
        )
    )
    return int(ahead or 0)


@dataclass
class RunFilter:
    statuses: list[str] = field(default_factory=list)
    experiment_id: int | None = None
    sweep_id: int | None = None
    created_by: int | None = None
    tags: list[str] = field(default_factory=list)
    components: dict[str, bool] = field(default_factory=dict)
    base_model: str | None = None
    dataset: str | None = None
    preset: str | None = None
    q: str | None = None
    ids: list[int] = field(default_factory=list)
    include_deleted: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if not self.include_deleted:
            where.append(Run.deleted_at.is_(None))
        if self.statuses:
            where.append(Run.status.in_(self.statuses))
        for column, value in (
            (Run.experiment_id, self.experiment_id),
            (Run.sweep_id, self.sweep_id),
            (Run.created_by, self.created_by),
            (Run.base_model, self.base_model),
            (Run.dataset, self.dataset),
            (Run.preset, self.preset),
        ):
            if value is not None:
                where.append(column == value)
        for name, enabled in self.components.items():
            where.append(getattr(Run, name).is_(enabled))
        for tag in self.tags:
            where.append(Run.id.in_(select(RunTag.run_id).where(RunTag.tag == tag)))
        if self.ids:
            where.append(Run.id.in_(self.ids))
        if self.q:
            needle = self.q.lower()
            where.append(
                or_(
                    *(
                        func.lower(column).contains(needle, autoescape=True)
                        for column in (Run.name, Run.base_model, Run.preset, Run.dataset, Run.notes)
                    )
                )
            )
        return where


SORTS = {
    "-created_at": (Run.created_at.desc(), Run.id.desc()),
    "created_at": (Run.created_at.asc(), Run.id.asc()),
    "-id": (Run.id.desc(),),
    "id": (Run.id.asc(),),
    "name": (Run.name.asc(), Run.id.desc()),
    "-name": (Run.name.desc(), Run.id.desc()),
    "status": (Run.status.asc(), Run.id.desc()),
    "progress": (Run.progress.asc(), Run.id.desc()),
    "-progress": (Run.progress.desc(), Run.id.desc()),
}


def list_runs(
    session: Session,
    filters: RunFilter | None = None,
    *,
    limit: int,
    offset: int,
    sort: str = "-id",
    status: str | None = None,
) -> tuple[list[Run], int]:
    filters = filters or RunFilter()
    if status is not None:
        filters.statuses = [status]
    where = filters.conditions()
    query = select(Run).where(*where)
    total = session.scalar(select(func.count(Run.id)).where(*where)) or 0
    rows = session.scalars(query.order_by(*SORTS[sort]).limit(limit).offset(offset))
    return list(rows), total


#: Joins a run's tags in one string; tags are letters, digits and _.:/+- only.
TAG_SEPARATOR = "\x1f"


def list_run_rows(
    session: Session,
    filters: RunFilter,
    *,
    limit: int,
    offset: int,
    sort: str,
    include_config: bool,
    latest_keys: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], int]:
    """Like `list_runs`, as `RunOut`-shaped dicts (its fields in its order, its defaults for the
    fields that are not columns), with each run's tags and the latest value of each of
    `latest_keys` (under "latest"), all read by one query.

    Lists are the studio's most frequent read (the runs table polls them), so: one round trip
    to the database (the total, the tags and the latest values are subqueries of the page's
    query; on a busy PostgreSQL each round trip costs more than the work), no ORM identity map,
    no model per run (the values are typed by their columns already), only the columns
    `RunOut` shows, no config JSON decoding when it is not wanted.
    """
    defaults = _run_out_defaults()
    where = filters.conditions()
    skip = set() if include_config else {"config", "env"}
    columns = [c for c in Run.__table__.c if c.name in defaults and c.name not in skip]
    names = [c.name for c in columns]
    # Not correlated with the page's runs: counted once over every run the filters keep.
    total = select(func.count(Run.id)).where(*where).correlate(None).scalar_subquery()
    tags = (
        select(func.aggregate_strings(RunTag.tag, TAG_SEPARATOR))
        .where(RunTag.run_id == Run.id)
        .scalar_subquery()
    )
    latest = [
        select(MetricLatest.value)
        .where(MetricLatest.run_id == Run.id, MetricLatest.key == key)
        .scalar_subquery()
        for key in latest_keys
    ]
    query = (
        select(*columns, total, tags, *latest)
        .where(*where)
        .order_by(*SORTS[sort])
        .limit(limit)
        .offset(offset)
    )
    connection = session.connection()
    page = connection.execute(query).all()
    if not page:  # past the end: the total still counts every matching run
        return [], connection.scalar(select(func.count(Run.id)).where(*where)) or 0
    width = len(columns)
    rows = []
    for values in page:
        # Updating a copy of the defaults keeps RunOut's field order; zip stops at the run
        # columns (the total, tags and latest values follow them).
        row = defaults.copy()
        row.update(zip(names, values, strict=False))
        joined_tags = values[width + 1]
        row["tags"] = sorted(joined_tags.split(TAG_SEPARATOR)) if joined_tags else []
        if latest_keys:
            row["latest"] = {
                key: value
                for key, value in zip(latest_keys, values[width + 2 :], strict=True)
                if value is not None
            }
        if not include_config:
            row["config"] = {}
        rows.append(row)
    return rows, int(page[0][width])


@cache
def _run_out_defaults() -> dict[str, Any]:
    # Once per process: pydantic inspects a default factory's signature on every call.
    from backend.runs.schemas import RunOut

    return {
        name: info.get_default(call_default_factory=True)
        for name, info in RunOut.model_fields.items()
    }


def event(session: Session, run: Run, level: str, message: str) -> None:
    repositories.append_run_event(session, run.id, level, message)


def cancel_run(session: Session, run_id: int, principal: Principal | None = None) -> Run:
    """A queued run is cancelled at once (it never starts); a running one stops at a step."""
    run = get_run(session, run_id)
    if principal is not None:
        principal.require_owner_or_admin(run.created_by, f"run {run_id}")
    if run.status in FINISHED_STATUSES:
        raise Conflict(f"run {run_id} is already {run.status}")
    run.cancel_requested = True
    if run.status == "queued":
        run.status = "cancelled"
        run.finished_at = utcnow()
    who = principal.email if principal else "system"
    event(session, run, "warning", f"cancel requested by {who}")
    return run


def retry_run(session: Session, run_id: int, principal: Principal) -> Run:
    """Put a failed or cancelled run back in the queue; it resumes from its last checkpoint."""
    run = get_run(session, run_id)
    principal.require_owner_or_admin(run.created_by, f"run {run_id}")
    if run.status not in ("failed", "cancelled"):
        raise Conflict(
            f"only failed or cancelled runs can be retried; run {run_id} is {run.status}"
        )
    run.status = "queued"
    run.cancel_requested = False
    run.error = None
    run.worker = None
    run.attempt = 0
    run.started_at = None
    run.finished_at = None
    event(session, run, "info", f"retry requested by {principal.email}")
    session.flush()
    return run


def clone_run(
    session: Session,
    run_id: int,
    principal: Principal,
    *,
    overrides: dict[str, Any],
    default_queue: str,
    name: str | None = None,
    experiment_id: int | None = None,
    tags: list[str] | None = None,
) -> Run:
    source = get_run(session, run_id)
    raw = deep_merge(source.config, overrides)
    raw["name"] = name if name is not None else raw.get("name")
    raw.pop("preset", None)  # the source's resolved config already holds the preset's values
    config = build_config(raw, prefix="overrides.")
    if source.preset is not None:
        config = config.model_copy(update={"preset": source.preset})
    return create_run(
        session,
        config,
        default_queue=default_queue,
        principal=principal,
        experiment_id=experiment_id if experiment_id is not None else source.experiment_id,
        tags=tags if tags is not None else source.tags,
        parent_run_id=source.id,
    )


def delete_run(session: Session, run_id: int, principal: Principal) -> Run:
    """Soft delete: the run disappears from lists; an unfinished run is cancelled too."""
    run = get_run(session, run_id)
    principal.require_owner_or_admin(run.created_by, f"run {run_id}")
    if run.status not in FINISHED_STATUSES:
        cancel_run(session, run_id, principal)
    run.deleted_at = utcnow()
    session.flush()
    return run


def update_run(
    session: Session,
    run_id: int,
    principal: Principal,
    changes: dict[str, Any],
) -> Run:
    run = get_run(session, run_id)
    principal.require_owner_or_admin(run.created_by, f"run {run_id}")
    if "tags" in changes:
        tags = changes.pop("tags") or []
        run.tag_rows = [RunTag(tag=t) for t in sorted(set(tags))]
    if changes.get("experiment_id") is not None:
        check_experiment(session, changes["experiment_id"])
    for name in ("name", "notes", "experiment_id"):
        if name in changes:
            setattr(run, name, changes[name])
    session.flush()
    return run


def run_events(
    session: Session, run_id: int, *, after_id: int, limit: int
) -> tuple[list[RunEvent], int]:
    get_run(session, run_id, include_deleted=True)
    rows = list(
        session.scalars(
            select(RunEvent)
            .where(RunEvent.run_id == run_id, RunEvent.id > after_id)
            .order_by(RunEvent.id)
            .limit(limit)
        )
    )
    return rows, (rows[-1].id if rows else after_id)
