"""Ready-made pools for the usual expensive resources, and metrics for pools you already have.

- ``DatabaseConnectionPool``: psycopg 3 connections (sync and asyncio).
- ``instrument_psycopg_pool`` / ``instrument_sqlalchemy_engine``: db.client.connection.* metrics
  for existing psycopg_pool pools and SQLAlchemy engines.
- ``HttpClientPool``: httpx clients. ``LlmClientPool``: OpenAI-compatible chat clients.

Importing this package imports psycopg and httpx only when a name is first used; without
them installed, that name says which extra to install (``db`` or ``http``).

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

# name -> (module, the extra its dependencies come with)
_WHERE = {
    "DatabaseConnectionPool": ("database", "db"),
    "instrument_psycopg_pool": ("instrument_db", "db"),
    "instrument_sqlalchemy_engine": ("instrument_db", "db"),
    "Instrumentation": ("instrument_db", "db"),
    "HttpClientPool": ("http", "http"),
    "LlmClientPool": ("llm", "http"),
    "LlmClient": ("llm", "http"),
    "AsyncLlmClient": ("llm", "http"),
    "LlmError": ("llm", "http"),
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
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'otel_memory.integration' has no attribute {name!r}")
    from importlib import import_module

    module, extra = where
    try:
        return getattr(import_module(f".{module}", __name__), name)
    except ModuleNotFoundError as error:
        from .._extras import missing_extra

        raise missing_extra(error, extra, f"otel_memory.integration.{name}") from None
