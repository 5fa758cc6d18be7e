"""The ingest's hand-framed binary arrays read back exactly on a real PostgreSQL server."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine

from backend.db.repositories.pg_arrays import enable, float8_array, int4_array, varchar_array

pytestmark = pytest.mark.postgres


@pytest.fixture
def connection(pg_database: str) -> Iterator[Connection]:
    engine = create_engine(pg_database)
    with engine.connect() as conn:
        enable(conn.connection.dbapi_connection)  # type: ignore[arg-type]
        yield conn
    engine.dispose()


def read_back(connection: Connection, array: bytes, cast: str) -> list[Any]:
    # The server reads the bytes with the receive function of the type their oid names: a
    # wrong oid, header or element length fails here rather than reading back wrong values.
    return list(connection.exec_driver_sql(f"SELECT %(a)b::{cast}", {"a": array}).scalar_one())


def test_floats_round_trip_bit_for_bit(connection: Connection) -> None:
    values = [0.0, -0.0, 1 / 3, -1e308, 5e-324, math.inf, -math.inf, 2.0**53 + 1, 7]
    back = read_back(connection, float8_array(values), "double precision[]")
    assert [struct.pack(">d", v) for v in back] == [struct.pack(">d", v) for v in values]


def test_ints_round_trip_at_the_32_bit_limits(connection: Connection) -> None:
    values = [0, 1, -1, 2**31 - 1, -(2**31), 123_456]
    assert read_back(connection, int4_array(values), "integer[]") == values
    with pytest.raises(struct.error):
        int4_array([2**31])


def test_strings_round_trip_in_utf8_with_repeats(connection: Connection) -> None:
    values = ["train/loss", "ééé/ключ/損失", "train/loss", "a", "x" * 200, "a"]
    assert read_back(connection, varchar_array(values), "varchar[]") == values


def test_enable_lets_a_plain_psycopg_connection_bind_them(pg_database: str) -> None:
    import psycopg

    with psycopg.connect(pg_database.replace("postgresql+psycopg", "postgresql")) as raw:
        # Nothing is registered globally: without `enable` the bytes go as bytea.
        with pytest.raises(psycopg.errors.CannotCoerce), raw.transaction():
            raw.execute("SELECT %b::integer[]", [int4_array([3, 1, 2])])
        enable(raw)
        row = raw.execute("SELECT %b::integer[]", [int4_array([3, 1, 2])]).fetchone()
        assert row == ([3, 1, 2],)


@pytest.mark.parametrize(
    ("build", "cast"),
    [(float8_array, "double precision[]"), (int4_array, "integer[]"), (varchar_array, "text[]")],
)
def test_empty_and_large_arrays(connection: Connection, build: Any, cast: str) -> None:
    assert read_back(connection, build([]), cast) == []
    many = [str(i) for i in range(20_000)] if build is varchar_array else list(range(20_000))
    assert read_back(connection, build(many), cast) == many
