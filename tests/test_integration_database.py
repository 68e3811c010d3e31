"""DatabaseConnectionPool without a server: configuration, reprs and failures keep the DSN secret.

The pool against a real PostgreSQL is in tests/e2e/test_database_pools.py."""

from __future__ import annotations

import logging
import socket

import psycopg
import pytest
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.config import MemoryManagementConfig
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
    assert PASSWORD not in str(failed.value)
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)
    stats = pool.stats()
    assert (stats.create_errors, stats.size, stats.borrowed) == (1, 0, 0)


def test_dsn_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="dsn must be a connection string"):
        DatabaseConnectionPool(2, {"host": "x"})  # type: ignore[arg-type]
