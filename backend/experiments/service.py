"""Experiments: create, list, rename, archive; membership (owner, editor, viewer)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from backend.auth.service import Principal, get_user
from backend.db.base import utcnow
from backend.db.models import Experiment, ExperimentMember, Run
from backend.errors import Conflict, Forbidden, NotFound


def get(session: Session, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} does not exist")
    return experiment


def _name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    query = select(Experiment.id).where(Experiment.name == name)
    if except_id is not None:
        query = query.where(Experiment.id != except_id)
    if session.scalar(query) is not None:
        raise Conflict(
            f"an experiment named {name!r} exists",
            fields=[{"path": "name", "message": "already taken"}],
        )


def create(
    session: Session, principal: Principal, name: str, description: str | None
) -> Experiment:
    principal.require_write()
    _name_free(session, name)
    experiment = Experiment(name=name, description=description, owner_id=principal.user_id)
    session.add(experiment)
    session.flush()
    if principal.user_id is not None:
        session.add(
            ExperimentMember(experiment_id=experiment.id, user_id=principal.user_id, role="owner")
        )
        session.flush()
    return experiment


def require_manager(session: Session, principal: Principal, experiment: Experiment) -> None:
    """Admins, the owner, and members with the 'owner' role manage an experiment."""
    principal.require_write()
    if principal.is_admin or experiment.owner_id == principal.user_id:
        return
    role = session.scalar(
        select(ExperimentMember.role).where(
            ExperimentMember.experiment_id == experiment.id,
            ExperimentMember.user_id == principal.user_id,
        )
    )
    if role != "owner":
        raise Forbidden(f"only owners of experiment {experiment.id} or admins may change it")


def list_(
    session: Session,
    *,
    include_archived: bool,
    q: str | None,
    member: int | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Experiment, int]], int]:
    where: list[ColumnElement[bool]] = []
    if not include_archived:
        where.append(Experiment.archived_at.is_(None))
    if q:
        where.append(func.lower(Experiment.name).contains(q.lower(), autoescape=True))
    if member is not None:
        where.append(
            Experiment.id.in_(
                select(ExperimentMember.experiment_id).where(ExperimentMember.user_id == member)
            )
        )
    total = session.scalar(select(func.count(Experiment.id)).where(*where)) or 0
    counts = (
        select(Run.experiment_id, func.count(Run.id).label("n"))
        .where(Run.deleted_at.is_(None))
        .group_by(Run.experiment_id)
        .subquery()
    )
    rows = session.execute(
        select(Experiment, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.experiment_id == Experiment.id)
        .where(*where)
        .order_by(Experiment.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [(e, int(n)) for e, n in rows], total


def run_count(session: Session, experiment_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(Run.id)).where(
                Run.experiment_id == experiment_id, Run.deleted_at.is_(None)
            )
        )
        or 0
    )


def update(
    session: Session,
    principal: Principal,
    experiment_id: int,
    *,
    name: str | None,
    description: str | None,
) -> Experiment:
    experiment = get(session, experiment_id)
    require_manager(session, principal, experiment)
    if name is not None:
        _name_free(session, name, except_id=experiment_id)
        experiment.name = name
    if description is not None:
        experiment.description = description
    session.flush()
    return experiment


def set_archived(
    session: Session, principal: Principal, experiment_id: int, archived: bool
) -> Experiment:
    experiment = get(session, experiment_id)
    require_manager(session, principal, experiment)
    experiment.archived_at = utcnow() if archived else None
    session.flush()
    return experiment


def members(session: Session, experiment_id: int) -> list[ExperimentMember]:
    get(session, experiment_id)
    return list(
        session.scalars(
            select(ExperimentMember)
            .where(ExperimentMember.experiment_id == experiment_id)
            .order_by(ExperimentMember.user_id)
        )
    )


def set_member(
    session: Session, principal: Principal, experiment_id: int, user_id: int, role: str
) -> ExperimentMember:
    experiment = get(session, experiment_id)
    require_manager(session, principal, experiment)
    get_user(session, user_id)
    member = session.get(ExperimentMember, (experiment_id, user_id))
    if member is None:
        member = ExperimentMember(experiment_id=experiment_id, user_id=user_id, role=role)
        session.add(member)
    else:
        member.role = role
    session.flush()
    return member


def remove_member(session: Session, principal: Principal, experiment_id: int, user_id: int) -> None:
    experiment = get(session, experiment_id)
    require_manager(session, principal, experiment)
    member = session.get(ExperimentMember, (experiment_id, user_id))
    if member is None:
        raise NotFound(f"user {user_id} is not a member of experiment {experiment_id}")
    session.delete(member)
    session.flush()
