"""Ready-made pools for the usual expensive resources, and metrics for pools you already have.

- ``DatabaseConnectionPool``: psycopg 3 connections (sync and asyncio).
- ``instrument_psycopg_pool`` / ``instrument_sqlalchemy_engine``: db.client.connection.* metrics
  for existing psycopg_pool pools and SQLAlchemy engines.
- ``HttpClientPool``: httpx clients. ``LlmClientPool``: OpenAI-compatible chat clients.

Importing this package imports psycopg and httpx only when a name is first used.

Example::

    from otel_memory.integration import DatabaseConnectionPool

    db = DatabaseConnectionPool(10, dsn)
    with db.get_connection() as conn:
        conn.execute("SELECT 1")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .database import DatabaseConnectionPool
    from .http import HttpClientPool
    from .instrument_db import Instrumentation, instrument_psycopg_pool, instrument_sqlalchemy_engine
    from .llm import AsyncLlmClient, LlmClient, LlmClientPool, LlmError

_WHERE = {
    "DatabaseConnectionPool": "database",
    "instrument_psycopg_pool": "instrument_db",
    "instrument_sqlalchemy_engine": "instrument_db",
    "Instrumentation": "instrument_db",
    "HttpClientPool": "http",
    "LlmClientPool": "llm",
    "LlmClient": "llm",
    "AsyncLlmClient": "llm",
    "LlmError": "llm",
}

__all__ = [
    "AsyncLlmClient",
    "DatabaseConnectionPool",
    "HttpClientPool",
    "Instrumentation",
    "LlmClient",
    "LlmClientPool",
    "LlmError",
    "instrument_psycopg_pool",
    "instrument_sqlalchemy_engine",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_memory.integration' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
