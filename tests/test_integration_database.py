"""DatabaseConnectionPool without a server: configuration, reprs and failures keep the DSN secret.

The pool against a real PostgreSQL is in tests/e2e/test_database_pools.py."""

from __future__ import annotations

import logging
import socket

import psycopg
import pytest
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.config import MemoryManagementConfig
from otel_memory.errors import ConfigError
from otel_memory.integration import DatabaseConnectionPool

PASSWORD = "hunter2-very-secret"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_size_comes_from_memory_db_pool_size(meter_provider: MeterProvider) -> None:
    config = MemoryManagementConfig.from_env({"MEMORY_DB_POOL_SIZE": "7"})
    pool = DatabaseConnectionPool.from_config(config, "host=127.0.0.1 dbname=x",
                                              meter_provider=meter_provider)
    assert pool.size == 7 and pool.pool.max_size == 7


def test_unreachable_server_fails_the_borrow_without_the_password(
        meter_provider: MeterProvider, caplog: pytest.LogCaptureFixture) -> None:
    dsn = f"postgresql://app:{PASSWORD}@127.0.0.1:{closed_port()}/app?connect_timeout=2"
    pool = DatabaseConnectionPool(2, dsn, name="down", meter_provider=meter_provider)
    assert PASSWORD not in repr(pool) and "127.0.0.1" in repr(pool)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(psycopg.OperationalError) as failed, pool.get_connection():
        pass
    assert_without_password(failed.value)
    assert "127.0.0.1" in str(failed.value)  # the reason itself is kept
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)
    stats = pool.stats()
    assert (stats.create_errors, stats.size, stats.borrowed) == (1, 0, 0)


def assert_without_password(error: BaseException) -> None:
    """Nothing reachable from the exception shows the password (psycopg's pgconn repr does)."""
    assert PASSWORD not in str(error) and PASSWORD not in repr(error)
    assert getattr(error, "pgconn", None) is None
    assert error.__context__ is None and error.__cause__ is None
    assert all(PASSWORD not in repr(value) for value in vars(error).values())


async def test_async_connect_failure_and_password_in_connect_kwargs(meter_provider: MeterProvider) -> None:
    dsn = f"host=127.0.0.1 port={closed_port()} user=app dbname=app connect_timeout=2"
    pool = DatabaseConnectionPool(2, dsn, name="down_async", meter_provider=meter_provider,
                                  connect_kwargs={"password": PASSWORD})
    with pytest.raises(psycopg.OperationalError) as failed:
        async with pool.get_connection():
            pass
    assert_without_password(failed.value)
    assert pool.async_pool.stats().create_errors == 1
    await pool.aclose()


@pytest.mark.parametrize("dsn", [
    f"postgresql://app:{PASSWORD}%zz@127.0.0.1/app",       # an unencoded % in the password
    f"host=127.0.0.1 user=app password={PASSWORD} x{PASSWORD}",  # an unquoted space in it
])
def test_dsn_psycopg_cannot_parse_is_refused_without_quoting_it(dsn: str) -> None:
    with pytest.raises(psycopg.ProgrammingError) as parser:  # what psycopg itself would say
        psycopg.conninfo.conninfo_to_dict(dsn)
    assert PASSWORD in str(parser.value)
    with pytest.raises(ConfigError, match="not a valid PostgreSQL connection string") as refused:
        DatabaseConnectionPool(2, dsn)
    assert PASSWORD not in str(refused.value) and refused.value.__context__ is None


def test_dsn_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="dsn must be a connection string"):
        DatabaseConnectionPool(2, {"host": "x"})  # type: ignore[arg-type]
