"""DatabaseConnectionPool: psycopg 3 connections in an otel_memory pool, for threads and asyncio.

Connections are checked on borrow (an empty query, so a connection killed server-side is
found, destroyed and replaced), rolled back on return when a transaction was left open,
retired after ``max_lifetime`` / ``idle_timeout``, and reported both as ``memory.pool.*`` and
as the semantic-convention ``db.client.connection.*`` metrics. The DSN's password never
appears in a repr, a log line, a metric or an exception raised by this module.

Fork safety: a pool used before ``os.fork()`` starts empty in the child; the parent's
connections are left alone (not closed, not finalized), so the parent keeps its sessions.

Example::

    db = DatabaseConnectionPool(10, "postgresql://app@db/app", name="app_db")
    with db.get_connection() as conn:
        conn.execute("INSERT INTO t VALUES (1)")        # committed when the block ends
    async with db.get_connection() as aconn:             # psycopg.AsyncConnection
        await aconn.execute("SELECT 1")
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import psycopg
from opentelemetry import metrics
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from ..config import MemoryManagementConfig
from ..pool import AsyncObjectPool, ObjectPool, PoolStats
from ._scope import BorrowScope

if TYPE_CHECKING:
    from ..manager import MemoryManager
from .instrument_db import instrument_psycopg_pool, instrument_sqlalchemy_engine

__all__ = ["DatabaseConnectionPool", "instrument_psycopg_pool", "instrument_sqlalchemy_engine"]

_IDLE = pq.TransactionStatus.IDLE
_CLEAN_STATES = (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


def _ping(conn: psycopg.Connection[Any]) -> bool:
    if conn.closed or conn.broken:
        return False
    if conn.info.transaction_status != _IDLE:
        conn.rollback()
    was_autocommit = conn.autocommit
    conn.autocommit = True  # local setting: no BEGIN, no extra round trip
    try:
        conn.execute("")  # one round trip: fails on a connection the server has dropped
    finally:
        if not was_autocommit and not conn.broken:
            conn.autocommit = False
    return True


async def _aping(conn: psycopg.AsyncConnection[Any]) -> bool:
    if conn.closed or conn.broken:
        return False
    if conn.info.transaction_status != _IDLE:
        await conn.rollback()
    was_autocommit = conn.autocommit
    await conn.set_autocommit(True)
    try:
        await conn.execute("")
    finally:
        if not was_autocommit and not conn.broken:
            await conn.set_autocommit(False)
    return True


def _reusable(conn: psycopg.BaseConnection[Any]) -> bool:
    return not conn.closed and not conn.broken and conn.info.transaction_status in _CLEAN_STATES


def _finish(conn: psycopg.Connection[Any], error: BaseException | None) -> bool:
    """End the scope's transaction like psycopg's ``with conn``: commit, or roll back on error."""
    if not _reusable(conn):
        return False
    if conn.info.transaction_status != _IDLE:
        if error is None:
            conn.commit()
        else:
            conn.rollback()
    return _reusable(conn) and conn.info.transaction_status == _IDLE


async def _afinish(conn: psycopg.AsyncConnection[Any], error: BaseException | None) -> bool:
    if not _reusable(conn):
        return False
    if conn.info.transaction_status != _IDLE:
        if error is None:
            await conn.commit()
        else:
            await conn.rollback()
    return _reusable(conn) and conn.info.transaction_status == _IDLE


def _safe_target(dsn: str) -> str:
    """host:port/dbname of a DSN, for reprs: never the user's password."""
    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - an unparsable DSN: say nothing about it
        return "?"
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"


class DatabaseConnectionPool:
    """A pool of psycopg 3 connections for sync and asyncio code, with db.client.connection.* metrics.

    ``size`` is the most connections of each kind (sync and async pools are separate; the
    async one is named ``<name>.async`` in metrics). Extra keyword arguments in
    ``connect_kwargs`` go to ``psycopg.connect``.

    Example::

        db = DatabaseConnectionPool(5, os.environ["DATABASE_URL"], timeout=2.0)
        with db.get_connection() as conn:
            rows = conn.execute("SELECT 1").fetchall()
        db.close()
    """

    def __init__(self, size: int, dsn: str, *, name: str = "database", min_idle: int = 0,
                 timeout: float | None = 30.0, max_waiting: int | None = None,
                 max_lifetime: float | None = 1800.0, idle_timeout: float | None = 600.0,
                 leak_detection_threshold: float | None = None,
                 connect_kwargs: dict[str, Any] | None = None,
                 meter_provider: metrics.MeterProvider | None = None,
                 manager: MemoryManager | None = None) -> None:
        if not isinstance(dsn, str):
            raise TypeError(f"dsn must be a connection string, got {type(dsn).__name__}")
        self.name = name
        self._dsn = dsn
        self._connect_kwargs = dict(connect_kwargs or {})
        self._options: dict[str, Any] = {
            "min_idle": min_idle, "timeout": timeout, "max_waiting": max_waiting,
            "max_lifetime": max_lifetime, "idle_timeout": idle_timeout,
            "leak_detection_threshold": leak_detection_threshold, "db_metrics": True,
            "meter_provider": meter_provider or (manager.meter_provider if manager else None)}
        self._manager = manager
        self._lock = threading.Lock()
        self._pool: ObjectPool[psycopg.Connection[Any]] = ObjectPool(
            name, self._connect, size, health_check=_ping, reset=self._reset_sync,
            destroy=_close, **self._options)
        self._async_pool: AsyncObjectPool[psycopg.AsyncConnection[Any]] | None = None
        self.size = size
        if manager is not None:
            manager.register_responder(self._pool)

    @classmethod
    def from_config(cls, config: MemoryManagementConfig, dsn: str, **options: Any
                    ) -> DatabaseConnectionPool:
        """A pool of ``config.database_connection_pool_size`` (MEMORY_DB_POOL_SIZE) connections."""
        return cls(config.database_connection_pool_size, dsn, **options)

    @classmethod
    def for_manager(cls, manager: MemoryManager, dsn: str, **options: Any) -> DatabaseConnectionPool:
        """A pool sized by the manager's config (MEMORY_DB_POOL_SIZE), reporting through its
        MeterProvider and releasing idle connections under its HIGH/CRITICAL pressure."""
        return cls(manager.config.database_connection_pool_size, dsn, manager=manager, **options)

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.Connection.connect(self._dsn, **self._connect_kwargs)

    async def _aconnect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self._dsn, **self._connect_kwargs)

    @staticmethod
    def _reset_sync(conn: psycopg.Connection[Any]) -> None:
        if not _reusable(conn):
            raise psycopg.InterfaceError("connection is closed, broken or busy")
        if conn.info.transaction_status != _IDLE:
            conn.rollback()

    @staticmethod
    async def _reset_async(conn: psycopg.AsyncConnection[Any]) -> None:
        if not _reusable(conn):
            raise psycopg.InterfaceError("connection is closed, broken or busy")
        if conn.info.transaction_status != _IDLE:
            await conn.rollback()

    @property
    def pool(self) -> ObjectPool[psycopg.Connection[Any]]:
        """The pool of sync connections."""
        return self._pool

    @property
    def async_pool(self) -> AsyncObjectPool[psycopg.AsyncConnection[Any]]:
        """The pool of asyncio connections (created on first use)."""
        with self._lock:
            if self._async_pool is None:
                self._async_pool = AsyncObjectPool(
                    f"{self.name}.async", self._aconnect, self.size, health_check=_aping,
                    reset=self._reset_async, destroy=_aclose, **self._options)
                if self._manager is not None:
                    self._manager.register_responder(self._async_pool)
            return self._async_pool

    def get_connection(self, timeout: float | None = None
                       ) -> BorrowScope[psycopg.Connection[Any], psycopg.AsyncConnection[Any]]:
        """``with`` lends a psycopg.Connection, ``async with`` a psycopg.AsyncConnection.

        The block's transaction is committed when it ends, rolled back on an exception, and
        the connection goes back to the pool (or is replaced if it broke).
        """
        return BorrowScope(lambda: self._pool, lambda: self.async_pool, timeout,
                           on_exit=_finish, on_async_exit=_afinish)

    def stats(self) -> PoolStats:
        """The sync pool's sizes and counters."""
        return self._pool.stats()

    def close(self) -> None:
        """Close the sync pool (the async pool, if used, with ``aclose``)."""
        self._pool.close()

    async def aclose(self) -> None:
        """Close both pools."""
        self._pool.close()
        if self._async_pool is not None:
            await self._async_pool.close()

    def __repr__(self) -> str:
        return f"<DatabaseConnectionPool {self.name!r} {_safe_target(self._dsn)} size={self.size}>"


def _close(conn: psycopg.Connection[Any]) -> None:
    conn.close()


async def _aclose(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.close()
