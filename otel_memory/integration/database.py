"""DatabaseConnectionPool: psycopg 3 connections in an otel_memory pool, for threads and asyncio.

Connections are checked on borrow (an empty query, so a connection killed server-side is
found, destroyed and replaced), rolled back on return when a transaction was left open,
retired after ``max_lifetime`` / ``idle_timeout``, and reported both as ``memory.pool.*`` and
as the semantic-convention ``db.client.connection.*`` metrics. The DSN's password never
appears in a repr, a log line, a metric or an exception: a DSN psycopg cannot parse (its
parser quotes the offending fragment) is refused at construction with ConfigError, and
psycopg's connection errors are re-raised as the same class with the password masked and
without the original's ``pgconn`` (whose repr lists the password).

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

from typing import TYPE_CHECKING, Any

import psycopg
from opentelemetry import metrics
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from ..config import MemoryManagementConfig
from ..errors import ArgumentTypeError, ConfigError
from ..pool import AsyncObjectPool, ObjectPool
from ._scope import BorrowScope, PoolPair, check_size

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


_SECRET_PARAMETERS = ("password", "sslpassword", "oauth_client_secret")


def _parse_dsn(dsn: str) -> dict[str, Any]:
    """The DSN's parameters; ConfigError without the parser's message, which quotes the DSN."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as error:
        failure = ConfigError(
            f"dsn is not a valid PostgreSQL connection string ({type(error).__name__}): expected "
            "'key=value ...' pairs or a postgresql:// URI with special characters percent-encoded "
            "(the parser's message is withheld: it may quote the password)")
    else:
        _check_address(params)
        return params
    raise failure  # outside the except block: the original error is not chained


def _check_address(params: dict[str, Any]) -> None:
    """Refuse what an empty value makes of a DSN: in ``port= password=...`` the port *is*
    ``password=...``, shown by repr and quoted by the server's error. Never quotes the value."""
    for key in ("host", "hostaddr", "port", "dbname", "user"):
        value = str(params.get(key, ""))
        if "=" in value:
            raise ConfigError(f"dsn: the {key} holds '=': expected a value after '{key}=' (an empty "
                              "value takes the next 'key=value' pair as its value; the value is withheld)")
    if "@" in str(params.get("host", ""))[1:] or "@" in str(params.get("hostaddr", "")):
        raise ConfigError("dsn: the host holds '@': expected a host name, address or socket directory "
                          "('user:password@host' belongs in a postgresql:// URI; the value is withheld)")
    ports = str(params.get("port", "5432"))
    if not all(port.isdigit() and 0 < int(port) < 65536 for port in ports.split(",")):
        raise ConfigError("dsn: the port is not valid: expected a number from 1 to 65535 (or a "
                          "comma-separated list of them; the value is withheld)")


def _redacted(error: psycopg.Error, secrets: tuple[str, ...]) -> psycopg.Error:
    """A copy of a psycopg error, of the same class, without the secrets in its message and
    without the original's ``pgconn`` (whose repr lists the password)."""
    message = str(error)
    for secret in secrets:
        message = message.replace(secret, "***")
    return type(error)(message)


class DatabaseConnectionPool(PoolPair[psycopg.Connection[Any], psycopg.AsyncConnection[Any]]):
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
        check_size("DatabaseConnectionPool", size)
        if not isinstance(dsn, str):
            raise ArgumentTypeError(f"dsn must be a connection string, got {type(dsn).__name__}")
        self._dsn = dsn
        self._connect_kwargs = dict(connect_kwargs or {})
        params = {**_parse_dsn(dsn), **self._connect_kwargs}
        self._target = (f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/"
                        f"{params.get('dbname', '')}")
        self._secrets = tuple(str(params[key]) for key in _SECRET_PARAMETERS if params.get(key))
        self._options: dict[str, Any] = {
            "min_idle": min_idle, "timeout": timeout, "max_waiting": max_waiting,
            "max_lifetime": max_lifetime, "idle_timeout": idle_timeout,
            "leak_detection_threshold": leak_detection_threshold, "db_metrics": True,
            "meter_provider": meter_provider or (manager.meter_provider if manager else None)}
        super().__init__(name, size, manager, ObjectPool(
            name, self._connect, size, health_check=_ping, reset=self._reset_sync,
            destroy=_close, **self._options))

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
        try:
            return psycopg.Connection.connect(self._dsn, **self._connect_kwargs)
        except psycopg.Error as error:
            failure = _redacted(error, self._secrets)
        raise failure  # outside the except block: the original (and its pgconn) is not chained

    async def _aconnect(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(self._dsn, **self._connect_kwargs)
        except psycopg.Error as error:
            failure = _redacted(error, self._secrets)
        raise failure

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

    def _make_async_pool(self) -> AsyncObjectPool[psycopg.AsyncConnection[Any]]:
        return AsyncObjectPool(f"{self.name}.async", self._aconnect, self.size, health_check=_aping,
                               reset=self._reset_async, destroy=_aclose, **self._options)

    def get_connection(self, timeout: float | None = None
                       ) -> BorrowScope[psycopg.Connection[Any], psycopg.AsyncConnection[Any]]:
        """``with`` lends a psycopg.Connection, ``async with`` a psycopg.AsyncConnection.

        The block's transaction is committed when it ends, rolled back on an exception, and
        the connection goes back to the pool (or is replaced if it broke).
        """
        return self._scope(timeout, _finish, _afinish)

    def __repr__(self) -> str:
        return f"<DatabaseConnectionPool {self.name!r} {self._target} size={self.size}>"


def _close(conn: psycopg.Connection[Any]) -> None:
    conn.close()


async def _aclose(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.close()
