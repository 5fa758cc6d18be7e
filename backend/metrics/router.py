"""Cross-run metric reads for comparison views and tables."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend.deps import SessionDep
from backend.metrics import service
from backend.metrics.schemas import KeysOut, LatestTable, SeriesOut
from backend.responses import json_response

router = APIRouter(prefix="/metrics", tags=["metrics"])

RunIds = Annotated[str, Query(min_length=1, max_length=5000, description="Comma-separated ids.")]
Keys = Annotated[str, Query(max_length=20_000, description="Comma-separated metric keys.")]


@router.get("/series", response_model=SeriesOut)
def series(
    session: SessionDep,
    run_ids: RunIds,
    keys: Annotated[str, Query(min_length=1, max_length=20_000)],
    max_points: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> Response:
    """Several runs' series in one call (overlaid curves), each downsampled to `max_points`."""
    ids = service.parse_ids(run_ids)
    wanted = service.parse_list(keys, field="keys", limit=service.MAX_KEYS_PER_QUERY)
    data = service.many_series(session, ids, wanted, max_points)
    # SeriesOut's shape, written directly (run ids become JSON object keys, as there).
    return json_response(
        {
            "runs": {
                rid: {k: service.points_json(pts) for k, pts in by.items()}
                for rid, by in data.items()
            }
        }
    )


@router.get("/latest", response_model=LatestTable)
def latest(session: SessionDep, run_ids: RunIds, keys: Keys = "") -> LatestTable:
    """Latest value (and min, max, count) of each key for each run: for tables."""
    ids = service.parse_ids(run_ids)
    wanted = service.parse_list(keys, field="keys", limit=service.MAX_KEYS_PER_QUERY)
    return LatestTable(runs=service.latest_table(session, ids, wanted))


@router.get("/keys", response_model=KeysOut)
def keys(session: SessionDep, run_ids: RunIds) -> KeysOut:
    """Every key logged by any of the runs."""
    return KeysOut(keys=service.keys_of(session, service.parse_ids(run_ids)))
