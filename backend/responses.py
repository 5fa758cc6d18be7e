"""JSON responses serialised straight from plain data.

FastAPI validates a route's return value against its `response_model` a second time and then
serialises it; for the large read responses (thousands of points, a thousand runs) that second
pass cost as much as the query. Routes that build their payload from typed columns return it
through `json_response` and keep `response_model=` for the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic_core import to_json


def json_response(payload: Any, status_code: int = 200) -> Response:
    """`payload` (dicts, lists, tuples, numbers, strings, datetimes, models) as compact JSON,
    the same bytes FastAPI's own pydantic serialiser writes."""
    return Response(to_json(payload), status_code=status_code, media_type="application/json")
