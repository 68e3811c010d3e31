"""Database pools against a real PostgreSQL: DatabaseConnectionPool, psycopg_pool, SQLAlchemy.

The exported db.client.connection.* metrics are compared with the pool's real state and with
what the server itself sees in pg_stat_activity, while connections are held, waited for and
timed out; a connection killed server-side is found by the health check and replaced.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest
import sqlalchemy
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.errors import PoolTimeout
from otel_memory.integration import (
    DatabaseConnectionPool,
    instrument_psycopg_pool,
    instrument_sqlalchemy_engine,
)
from tests.conftest import collect, points, require_tool
from tests.e2e.postgres_server import PostgresServer

pytestmark = pytest.mark.e2e

APP = "otel-memory-e2e"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer.start(require_tool("initdb"))
    try:
        with psycopg.connect(server.dsn, autocommit=True) as admin:
            admin.execute("CREATE TABLE items (id int)")
        yield server
    finally:
        server.stop()


def server_connections(server: PostgresServer, application: str) -> int:
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                            (application,)).fetchone()
    assert row is not None
    return int(row[0])


def db(reader: InMemoryMetricReader, pool: str) -> dict[str, Any]:
    """{metric name or 'count.<state>': value} of one db pool; histograms give their count."""
    got = collect(reader)
    result: dict[str, Any] = {}
    for spec in catalog.in_group(catalog.Group.DB):
        for value, attrs in points(got, spec.name):
            if attrs.get(catalog.ATTR_DB_POOL_NAME) != pool:
                continue
            state = attrs.get(catalog.ATTR_DB_STATE)
            result[f"count.{state}" if state else spec.name] = value
    return result


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_database_connection_pool_metrics_match_the_server(
        postgres: PostgresServer, meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    pool = DatabaseConnectionPool(2, postgres.dsn, name="app_db", timeout=0.3,
                                  connect_kwargs={"application_name": APP},
                                  meter_provider=meter_provider)
    first, second = pool.get_connection(), pool.get_connection()
    conn1, conn2 = first.__enter__(), second.__enter__()
    assert server_connections(postgres, APP) == 2
    metrics = db(reader, "app_db")
    assert (metrics["count.used"], metrics["count.idle"]) == (2, 0)
    assert metrics[catalog.DB_CLIENT_CONNECTION_MAX.name] == 2
    assert metrics[catalog.DB_CLIENT_CONNECTION_CREATE_TIME.name] == 2

    outcome: list[object] = []

    def borrower() -> None:
        try:
            with pool.get_connection(timeout=5.0) as conn:
                outcome.append(conn.execute("SELECT 41 + 1").fetchone())
        except BaseException as error:  # noqa: BLE001 - reported to the test
            outcome.append(error)

    thread = threading.Thread(target=borrower)
    thread.start()
    wait_until(lambda: pool.stats().pending_requests == 1)
    assert db(reader, "app_db")[catalog.DB_CLIENT_CONNECTION_PENDING_REQUESTS.name] == 1
    conn1.execute("INSERT INTO items VALUES (1)")
    first.__exit__(None, None, None)  # commits, then the waiter gets the connection
    thread.join()
    assert outcome == [(42,)]
    third = pool.get_connection()
    third.__enter__()
    with pytest.raises(PoolTimeout):
        pool.get_connection(timeout=0.05).__enter__()
    third.__exit__(None, None, None)
    metrics = db(reader, "app_db")
    assert metrics[catalog.DB_CLIENT_CONNECTION_TIMEOUTS.name] == 1
    assert (metrics["count.used"], metrics["count.idle"]) == (1, 1)
    assert server_connections(postgres, APP) == 2  # no connection leaked or opened twice
    assert metrics[catalog.DB_CLIENT_CONNECTION_USE_TIME.name] == 3
    assert metrics[catalog.DB_CLIENT_CONNECTION_WAIT_TIME.name] == 4  # the timed-out one got none
    with pytest.raises(ZeroDivisionError), pool.get_connection() as conn:
        conn.execute("INSERT INTO items VALUES (2)")
        _ = 1 / 0  # rolled back
    second.__exit__(None, None, None)
    with pool.get_connection() as conn:
        assert conn.execute("SELECT array_agg(id) FROM items").fetchone() == ([1],)
    assert "app_db" in repr(pool) and "password" not in repr(pool)
    pool.close()
    assert conn2.closed
    # the server ends a backend shortly after its client hangs up
    wait_until(lambda: server_connections(postgres, APP) == 0)


def test_connection_killed_server_side_is_replaced(postgres: PostgresServer, meter_provider: MeterProvider,
                                                   reader: InMemoryMetricReader) -> None:
    pool = DatabaseConnectionPool(2, postgres.dsn, name="killed_db", meter_provider=meter_provider,
                                  connect_kwargs={"application_name": APP + "-kill"})
    with pool.get_connection() as conn:
        victim = conn.info.backend_pid
    with psycopg.connect(postgres.dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (victim,))
    wait_until(lambda: server_connections(postgres, APP + "-kill") == 0)
    with pool.get_connection() as conn:
        assert conn.info.backend_pid != victim
        assert conn.execute("SELECT 1").fetchone() == (1,)
    got = collect(reader)
    destroyed = {attrs[catalog.ATTR_POOL_DESTROY_REASON]: value
                 for value, attrs in points(got, catalog.MEMORY_POOL_DESTROYED.name)
                 if attrs[catalog.ATTR_POOL_NAME] == "killed_db"}
    assert destroyed["health_check"] == 1
    stats = pool.stats()
    assert (stats.created, stats.size, stats.borrows) == (2, 1, 2)
    pool.close()


async def test_async_connections(postgres: PostgresServer, meter_provider: MeterProvider,
                                 reader: InMemoryMetricReader) -> None:
    pool = DatabaseConnectionPool(2, postgres.dsn, name="adb", meter_provider=meter_provider)

    async def query(n: int) -> Any:
        async with pool.get_connection() as conn:
            assert isinstance(conn, psycopg.AsyncConnection)
            cursor = await conn.execute("SELECT %s::int, pg_sleep(0.05)", (n,))
            return (await cursor.fetchone())[0]  # type: ignore[index]

    assert sorted(await asyncio.gather(*(query(n) for n in range(5)))) == [0, 1, 2, 3, 4]
    metrics = db(reader, "adb.async")
    assert metrics["count.idle"] == 2 and metrics["count.used"] == 0
    assert metrics[catalog.DB_CLIENT_CONNECTION_WAIT_TIME.name] == 5
    await pool.aclose()


def test_instrument_psycopg_pool(postgres: PostgresServer, meter_provider: MeterProvider,
                                 reader: InMemoryMetricReader) -> None:
    pool = psycopg_pool.ConnectionPool(postgres.dsn, min_size=1, max_size=2, timeout=0.3, open=False,
                                       name="psycopg_orders", kwargs={"application_name": APP + "-pp"})
    instrumentation = instrument_psycopg_pool(pool, meter_provider=meter_provider)
    assert instrument_psycopg_pool(pool, meter_provider=meter_provider) is instrumentation
    pool.open(wait=True)
    try:
        first, second = pool.getconn(), pool.getconn()
        wait_until(lambda: pool.get_stats()["pool_size"] == 2)
        metrics = db(reader, "psycopg_orders")
        assert (metrics["count.used"], metrics["count.idle"]) == (2, 0)
        assert server_connections(postgres, APP + "-pp") == 2
        assert metrics[catalog.DB_CLIENT_CONNECTION_MAX.name] == 2
        assert metrics[catalog.DB_CLIENT_CONNECTION_IDLE_MIN.name] == 1
        with pytest.raises(psycopg_pool.PoolTimeout):
            pool.getconn(timeout=0.05)
        pool.putconn(first)
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        metrics = db(reader, "psycopg_orders")
        assert metrics[catalog.DB_CLIENT_CONNECTION_TIMEOUTS.name] == 1
        assert (metrics["count.used"], metrics["count.idle"]) == (1, 1)
        assert metrics[catalog.DB_CLIENT_CONNECTION_WAIT_TIME.name] == 3
        assert metrics[catalog.DB_CLIENT_CONNECTION_USE_TIME.name] == 2
        assert metrics[catalog.DB_CLIENT_CONNECTION_CREATE_TIME.name] == 2
        pool.putconn(second)
        instrumentation.uninstrument()
        left = db(reader, "psycopg_orders")  # histograms keep their cumulative points
        assert "count.idle" not in left and catalog.DB_CLIENT_CONNECTION_MAX.name not in left
        assert "getconn" not in vars(pool)
    finally:
        pool.close()


def test_instrument_sqlalchemy_engine(postgres: PostgresServer, meter_provider: MeterProvider,
                                      reader: InMemoryMetricReader) -> None:
    engine = sqlalchemy.create_engine(postgres.url, pool_size=2, max_overflow=0, pool_timeout=0.2,
                                      connect_args={"application_name": APP + "-sa"})
    instrument_sqlalchemy_engine(engine, name="sa_pool", meter_provider=meter_provider)
    first, second = engine.connect(), engine.connect()
    metrics = db(reader, "sa_pool")
    assert (metrics["count.used"], metrics["count.idle"]) == (2, 0)
    assert server_connections(postgres, APP + "-sa") == 2
    assert metrics[catalog.DB_CLIENT_CONNECTION_MAX.name] == 2
    assert metrics[catalog.DB_CLIENT_CONNECTION_CREATE_TIME.name] == 2
    with pytest.raises(sqlalchemy.exc.TimeoutError):
        engine.connect()
    first.close()
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    metrics = db(reader, "sa_pool")
    assert metrics[catalog.DB_CLIENT_CONNECTION_TIMEOUTS.name] == 1
    assert (metrics["count.used"], metrics["count.idle"]) == (1, 1)
    assert metrics[catalog.DB_CLIENT_CONNECTION_USE_TIME.name] == 2
    second.close()
    engine.dispose()  # a new pool: still instrumented
    held = [engine.connect(), engine.connect()]
    with pytest.raises(sqlalchemy.exc.TimeoutError):
        engine.connect()
    assert db(reader, "sa_pool")[catalog.DB_CLIENT_CONNECTION_TIMEOUTS.name] == 2
    for conn in held:
        conn.close()
    engine.dispose()


def test_forked_child_opens_its_own_connections_and_leaves_the_parents_alone(
        postgres: PostgresServer, meter_provider: MeterProvider) -> None:
    import gc
    import os

    pool = DatabaseConnectionPool(2, postgres.dsn, name="forked_db", meter_provider=meter_provider)
    with pool.get_connection() as conn:
        parent_backend = conn.info.backend_pid
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not touch the parent's idle connection
        code = 1
        try:
            with pool.get_connection() as conn:
                child_backend = conn.info.backend_pid
                conn.execute("SELECT 1")
            pool.close()  # closes the child's own connection only
            gc.collect()
            os.write(write_end, str(child_backend).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    child_backend = int(os.read(read_end, 64) or b"0")
    os.close(read_end)
    assert status == 0
    assert child_backend not in (0, parent_backend)
    with pool.get_connection() as conn:  # the parent's session survived the child
        assert conn.info.backend_pid == parent_backend
        assert conn.execute("SELECT 7").fetchone() == (7,)
    pool.close()


async def test_instrument_async_psycopg_pool(postgres: PostgresServer, meter_provider: MeterProvider,
                                            reader: InMemoryMetricReader) -> None:
    pool = psycopg_pool.AsyncConnectionPool(postgres.dsn, min_size=1, max_size=2, timeout=0.3,
                                            open=False, name="apsycopg")
    instrument_psycopg_pool(pool, meter_provider=meter_provider)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
            metrics = db(reader, "apsycopg")
            assert metrics["count.used"] == 1
        held = [await pool.getconn(), await pool.getconn()]
        with pytest.raises(psycopg_pool.PoolTimeout):
            await pool.getconn(timeout=0.05)
        for conn in held:
            await pool.putconn(conn)
        metrics = db(reader, "apsycopg")
        assert metrics[catalog.DB_CLIENT_CONNECTION_TIMEOUTS.name] == 1
        assert metrics[catalog.DB_CLIENT_CONNECTION_WAIT_TIME.name] == 3
        assert metrics[catalog.DB_CLIENT_CONNECTION_USE_TIME.name] == 3
    finally:
        await pool.close()


def test_database_pooling_example_runs(postgres: PostgresServer) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    example = str(ROOT / "examples" / "database_pooling.py")
    ran = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "OTEL_MEMORY_EXAMPLE_DSN": postgres.dsn})
    assert ran.returncode == 0, ran.stderr
    lines = [line.split() for line in ran.stdout.splitlines()]
    legacy_idle = [line for line in lines if line[:1] == [catalog.DB_CLIENT_CONNECTION_COUNT.name]
                   and "db.client.connection.pool.name=legacy_pool," in line
                   and "db.client.connection.state=idle" in line]
    assert legacy_idle and legacy_idle[0][-1] == "1"
    unset = {k: v for k, v in os.environ.items() if k != "OTEL_MEMORY_EXAMPLE_DSN"}
    explained = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=60,
                               env=unset)
    assert explained.returncode == 0 and "OTEL_MEMORY_EXAMPLE_DSN" in explained.stdout
