"""db.client.connection.* metrics for pools otel_memory does not own: psycopg_pool and SQLAlchemy.

``instrument_psycopg_pool(pool)`` wraps the pool instance's ``getconn``, ``putconn`` and
``_connect`` (sync or async) to time waits, use and creation and to count timeouts; sizes come
from ``pool.get_stats()``. ``instrument_sqlalchemy_engine(engine)`` listens to the engine's
pool events (connect, checkout, checkin) and wraps its pool's ``connect`` for wait time and
timeouts, re-wrapping after ``engine.dispose()``. Both are idempotent and return an
``Instrumentation`` whose ``uninstrument()`` stops the metrics. Metrics go to ``meter_provider``,
else to the ``memory_manager``'s, else to the global MeterProvider.

Example::

    pool = psycopg_pool.ConnectionPool(dsn, min_size=2, max_size=10)
    instrument_psycopg_pool(pool, name="orders_db")
    engine = sqlalchemy.create_engine(url, pool_size=5)
    instrument_sqlalchemy_engine(engine, memory_manager=manager)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics

from ..pool import DESTROY_REASONS, PoolStats
from ..pool.metrics import PoolRecorder, instruments_for

if TYPE_CHECKING:
    from ..manager import MemoryManager

_ATTRIBUTE = "_otel_memory_instrumentation"


def _provider(meter_provider: metrics.MeterProvider | None,
              memory_manager: MemoryManager | None) -> metrics.MeterProvider | None:
    """The explicit provider, else the manager's (None: the global one)."""
    if meter_provider is not None:
        return meter_provider
    return memory_manager.meter_provider if memory_manager is not None else None


class Instrumentation:
    """The metrics source of one foreign pool.

    Example::

        instrumentation = instrument_psycopg_pool(pool)
        instrumentation.stats().borrowed
        instrumentation.uninstrument()
    """

    def __init__(self, name: str, read: Callable[[], tuple[int, int, int, int, int, int]],
                 meter_provider: metrics.MeterProvider | None) -> None:
        self.name = name
        self._read = read
        self.timeouts = 0
        self.in_flight = 0
        self.lock = threading.Lock()
        self.recorder = PoolRecorder(instruments_for(meter_provider), name, pool_metrics=False, db=True)
        self.recorder.shared.add(self, pool_metrics=False, db_metrics=True)
        self._undo: list[Callable[[], None]] = []

    def stats(self) -> PoolStats:
        """Sizes read from the pool now, timeouts counted by the wrappers."""
        idle, used, max_size, max_idle, min_idle, pending = self._read()
        return PoolStats(
            name=self.name, size=idle + used, idle=idle, borrowed=used, max_size=max_size,
            min_idle=min_idle, pending_requests=pending, borrows=0, timeouts=self.timeouts,
            rejections=0, created=0, create_errors=0,
            destroyed=tuple((reason, 0) for reason in DESTROY_REASONS), leaked_borrows=0,
            max_idle=max_idle)

    def count_timeout(self) -> None:
        with self.lock:
            self.timeouts += 1

    def uninstrument(self) -> None:
        """Stop exporting and remove the wrappers and listeners."""
        self.recorder.shared.remove(self)
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def _existing(target: Any) -> Instrumentation | None:
    found = getattr(target, _ATTRIBUTE, None)
    return found if isinstance(found, Instrumentation) else None


# --- psycopg_pool -------------------------------------------------------------------------------

def instrument_psycopg_pool(pool: Any, *, name: str | None = None,
                            meter_provider: metrics.MeterProvider | None = None,
                            memory_manager: MemoryManager | None = None) -> Instrumentation:
    """Export db.client.connection.* for a psycopg_pool ConnectionPool or AsyncConnectionPool."""
    import psycopg_pool

    if not isinstance(pool, psycopg_pool.ConnectionPool | psycopg_pool.AsyncConnectionPool):
        raise TypeError(f"instrument_psycopg_pool expects a psycopg_pool ConnectionPool or "
                        f"AsyncConnectionPool, got {type(pool).__name__}")
    existing = _existing(pool)
    if existing is not None:
        return existing
    target: Any = pool  # its methods are replaced on this instance

    def read() -> tuple[int, int, int, int, int, int]:
        stats = target.get_stats()
        idle = stats.get("pool_available", 0)
        size = stats.get("pool_size", 0)
        return (idle, max(size - idle, 0), stats.get("pool_max", 0), stats.get("pool_max", 0),
                stats.get("pool_min", 0), stats.get("requests_waiting", 0))

    instrumentation = Instrumentation(name or target.name, read, _provider(meter_provider, memory_manager))
    recorder = instrumentation.recorder
    checked_out: dict[int, float] = {}
    getconn, putconn, connect = target.getconn, target.putconn, target._connect

    if isinstance(pool, psycopg_pool.AsyncConnectionPool):
        async def agetconn(timeout: float | None = None) -> Any:
            began = time.perf_counter()
            try:
                conn = await getconn(timeout)
            except psycopg_pool.PoolTimeout:
                instrumentation.count_timeout()
                raise
            now = time.perf_counter()
            recorder.record_db_wait(now - began)
            checked_out[id(conn)] = now
            return conn

        async def aputconn(conn: Any) -> None:
            began = checked_out.pop(id(conn), None)
            if began is not None:
                recorder.record_use(time.perf_counter() - began)
            await putconn(conn)

        async def aconnect(timeout: float | None = None) -> Any:
            began = time.perf_counter()
            conn = await connect(timeout)
            recorder.record_create(time.perf_counter() - began)
            return conn

        target.getconn, target.putconn, target._connect = agetconn, aputconn, aconnect
    else:
        def sgetconn(timeout: float | None = None) -> Any:
            began = time.perf_counter()
            try:
                conn = getconn(timeout)
            except psycopg_pool.PoolTimeout:
                instrumentation.count_timeout()
                raise
            now = time.perf_counter()
            recorder.record_db_wait(now - began)
            checked_out[id(conn)] = now
            return conn

        def sputconn(conn: Any) -> None:
            began = checked_out.pop(id(conn), None)
            if began is not None:
                recorder.record_use(time.perf_counter() - began)
            putconn(conn)

        def sconnect(timeout: float | None = None) -> Any:
            began = time.perf_counter()
            conn = connect(timeout)
            recorder.record_create(time.perf_counter() - began)
            return conn

        target.getconn, target.putconn, target._connect = sgetconn, sputconn, sconnect

    def undo() -> None:
        for attribute in ("getconn", "putconn", "_connect", _ATTRIBUTE):
            target.__dict__.pop(attribute, None)

    instrumentation._undo.append(undo)
    setattr(target, _ATTRIBUTE, instrumentation)
    return instrumentation


# --- SQLAlchemy --------------------------------------------------------------------------------

def instrument_sqlalchemy_engine(engine: Any, *, name: str | None = None,
                                 meter_provider: metrics.MeterProvider | None = None,
                                 memory_manager: MemoryManager | None = None) -> Instrumentation:
    """Export db.client.connection.* for a SQLAlchemy Engine (or AsyncEngine) and its pool."""
    import sqlalchemy
    from sqlalchemy import event, exc

    engine = getattr(engine, "sync_engine", engine)
    if not isinstance(engine, sqlalchemy.engine.Engine):
        raise TypeError(f"instrument_sqlalchemy_engine expects a SQLAlchemy Engine or AsyncEngine, "
                        f"got {type(engine).__name__}")
    existing = _existing(engine)
    if existing is not None:
        return existing
    url = engine.url
    pool_name = name or f"{url.host or 'localhost'}:{url.port or ''}/{url.database or ''}"

    def read() -> tuple[int, int, int, int, int, int]:
        pool = engine.pool
        if isinstance(pool, sqlalchemy.pool.QueuePool):
            overflow = pool._max_overflow
            most = pool.size() + overflow if overflow >= 0 else pool.size() + max(pool.overflow(), 0)
            return (pool.checkedin(), pool.checkedout(), most, pool.size(), 0,
                    instrumentation.in_flight)
        checked_in = getattr(pool, "checkedin", lambda: 0)()
        checked_out = getattr(pool, "checkedout", lambda: 0)()
        return (checked_in, checked_out, checked_in + checked_out, checked_in, 0, 0)

    instrumentation = Instrumentation(pool_name, read, _provider(meter_provider, memory_manager))
    recorder = instrumentation.recorder
    connecting = threading.local()
    key = "otel_memory.checkout"

    def before_connect(*_args: Any) -> None:
        connecting.began = time.perf_counter()

    def on_connect(_dbapi: Any, _record: Any) -> None:
        began = getattr(connecting, "began", None)
        if began is not None:
            recorder.record_create(time.perf_counter() - began)
            connecting.began = None

    def on_checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        record.info[key] = time.perf_counter()

    def on_checkin(_dbapi: Any, record: Any) -> None:
        began = record.info.pop(key, None) if record is not None else None
        if began is not None:
            recorder.record_use(time.perf_counter() - began)

    def wrap_pool(pool: Any) -> None:
        original = pool.connect

        def connect() -> Any:
            with instrumentation.lock:
                instrumentation.in_flight += 1
            began = time.perf_counter()
            try:
                proxied = original()
            except exc.TimeoutError:
                instrumentation.count_timeout()
                raise
            finally:
                with instrumentation.lock:
                    instrumentation.in_flight -= 1
            recorder.record_db_wait(time.perf_counter() - began)
            return proxied

        pool.connect = connect

    def on_disposed(disposed: Any) -> None:
        wrap_pool(disposed.pool)

    listeners: list[tuple[Any, str, Callable[..., Any]]] = [
        (engine, "do_connect", before_connect), (engine, "connect", on_connect),
        (engine, "checkout", on_checkout), (engine, "checkin", on_checkin),
        (engine, "engine_disposed", on_disposed)]
    for target, name_, listener in listeners:
        event.listen(target, name_, listener)
    wrap_pool(engine.pool)

    def undo() -> None:
        for target, name_, listener in listeners:
            event.remove(target, name_, listener)
        engine.pool.__dict__.pop("connect", None)
        engine.__dict__.pop(_ATTRIBUTE, None)

    instrumentation._undo.append(undo)
    setattr(engine, _ATTRIBUTE, instrumentation)
    return instrumentation
