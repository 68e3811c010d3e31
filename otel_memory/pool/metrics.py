"""Pool metrics: one set of instruments per MeterProvider, fed by every live pool.

The OpenTelemetry SDK keeps only the first callback of an instrument name, so pools cannot
each create their own ``memory.pool.size``: ``instruments_for(provider)`` creates the
instruments once per provider, and each pool (or adapted third-party pool) registers itself
as a ``MetricSource``, held weakly. Counters are plain integers the pool keeps under its own
lock; callbacks read a ``PoolStats`` snapshot. Histograms are recorded only on slow paths.

Example::

    recorder = PoolRecorder(instruments_for(meter_provider), source, db=False)
    recorder.record_create(0.004)
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Protocol

from opentelemetry import metrics
from opentelemetry.metrics import Histogram

from .. import catalog, forking
from ..forking import ProcessLock
from ..instruments import Attributes, InstrumentSet, Points, get_meter
from ._core import PoolStats

_log = logging.getLogger("otel_memory")


def _name_of(source: MetricSource) -> str:
    try:
        return str(source.name)
    except Exception:  # noqa: BLE001 - only for a log line
        return type(source).__name__


class MetricSource(Protocol):
    """Anything whose state the pool metrics export: our pools and adapted foreign pools.

    Example::

        instruments_for(provider).add(pool, pool_metrics=True, db_metrics=False)
    """

    @property
    def name(self) -> str: ...

    def stats(self) -> PoolStats: ...


class ProviderInstruments:
    """The pool instruments of one MeterProvider and the sources they read.

    Example::

        shared = instruments_for(meter_provider)
        shared.add(pool, pool_metrics=True, db_metrics=False)
    """

    def __init__(self, provider: metrics.MeterProvider | None) -> None:
        self._lock = threading.Lock()
        self._pool_sources: weakref.WeakSet[MetricSource] = weakref.WeakSet()
        self._db_sources: weakref.WeakSet[MetricSource] = weakref.WeakSet()
        self._failed: set[int] = set()
        forking.after_fork_in_child(self)
        self.instruments = InstrumentSet(get_meter(provider))
        pool_specs: list[tuple[catalog.MetricSpec, Callable[[PoolStats], int]]] = [
            (catalog.MEMORY_POOL_SIZE, lambda s: s.size),
            (catalog.MEMORY_POOL_BORROWED, lambda s: s.borrowed),
            (catalog.MEMORY_POOL_IDLE, lambda s: s.idle),
            (catalog.MEMORY_POOL_MAX, lambda s: s.max_size),
            (catalog.MEMORY_POOL_PENDING_REQUESTS, lambda s: s.pending_requests),
            (catalog.MEMORY_POOL_BORROWS, lambda s: s.borrows),
            (catalog.MEMORY_POOL_TIMEOUTS, lambda s: s.timeouts),
            (catalog.MEMORY_POOL_REJECTIONS, lambda s: s.rejections),
            (catalog.MEMORY_POOL_CREATED, lambda s: s.created),
            (catalog.MEMORY_POOL_CREATE_ERRORS, lambda s: s.create_errors),
            (catalog.MEMORY_POOL_LEAKED_BORROWS, lambda s: s.leaked_borrows),
        ]
        for spec, read in pool_specs:
            self.instruments.observe(spec, self._points(self._pool_sources, catalog.ATTR_POOL_NAME, read))
        self.instruments.observe(catalog.MEMORY_POOL_DESTROYED, self._destroyed_points)
        db_specs: list[tuple[catalog.MetricSpec, Callable[[PoolStats], int]]] = [
            (catalog.DB_CLIENT_CONNECTION_MAX, lambda s: s.max_size),
            (catalog.DB_CLIENT_CONNECTION_IDLE_MAX, lambda s: s.max_idle),
            (catalog.DB_CLIENT_CONNECTION_IDLE_MIN, lambda s: s.min_idle),
            (catalog.DB_CLIENT_CONNECTION_PENDING_REQUESTS, lambda s: s.pending_requests),
            (catalog.DB_CLIENT_CONNECTION_TIMEOUTS, lambda s: s.timeouts),
        ]
        for spec, read in db_specs:
            self.instruments.observe(spec, self._points(self._db_sources, catalog.ATTR_DB_POOL_NAME, read))
        self.instruments.observe(catalog.DB_CLIENT_CONNECTION_COUNT, self._db_count_points)
        self.wait_time = self.instruments.histogram(catalog.MEMORY_POOL_WAIT_TIME)
        self.create_time = self.instruments.histogram(catalog.MEMORY_POOL_CREATE_TIME)
        self.use_time = self.instruments.histogram(catalog.MEMORY_POOL_USE_TIME)
        self.db_wait_time = self.instruments.histogram(catalog.DB_CLIENT_CONNECTION_WAIT_TIME)
        self.db_create_time = self.instruments.histogram(catalog.DB_CLIENT_CONNECTION_CREATE_TIME)
        self.db_use_time = self.instruments.histogram(catalog.DB_CLIENT_CONNECTION_USE_TIME)

    def _after_fork_in_child(self) -> None:
        # a thread of the parent may have held the lock at the fork: the child would wait forever
        self._lock = threading.Lock()

    def add(self, source: MetricSource, *, pool_metrics: bool, db_metrics: bool) -> None:
        """Export ``source`` (held weakly) in the memory.pool.* and/or db.client.connection.* sets."""
        with self._lock:
            live = {other.name for other in (*self._pool_sources, *self._db_sources)}
            if pool_metrics:
                self._pool_sources.add(source)
            if db_metrics:
                self._db_sources.add(source)
        if source.name in live:
            _log.warning("otel_memory: two live pools are named %r on one MeterProvider: their "
                         "points carry the same attributes and collide; give each pool its own "
                         "name", source.name)

    def remove(self, source: MetricSource) -> None:
        """Stop exporting ``source``."""
        with self._lock:
            self._pool_sources.discard(source)
            self._db_sources.discard(source)

    def _snapshots(self, sources: weakref.WeakSet[MetricSource]) -> Iterator[PoolStats]:
        """Each live source's stats; a source whose stats() raises is left out, warned once,
        so one broken adapted pool never blanks the metrics of every other pool."""
        with self._lock:
            live = list(sources)
        for source in live:
            try:
                stats = source.stats()
            except Exception as error:  # noqa: BLE001 - one pool's failure stays that pool's
                if id(source) not in self._failed:
                    self._failed.add(id(source))
                    _log.warning("otel_memory: pool metrics: reading pool %r failed (%s); its "
                                 "points are left out (logged once)", _name_of(source),
                                 type(error).__name__)
                continue
            yield stats

    def _points(self, sources: weakref.WeakSet[MetricSource], name_attribute: str,
                read: Callable[[PoolStats], int]) -> Callable[[], Points]:
        """One point per pool of ``sources``: ``read(stats)``, labelled with the pool's name."""
        def points() -> Points:
            return [(read(s), {name_attribute: s.name}) for s in self._snapshots(sources)]

        return points

    def _destroyed_points(self) -> Points:
        result: list[tuple[float | None, Attributes]] = []
        for stats in self._snapshots(self._pool_sources):
            for reason, count in stats.destroyed:
                result.append((count, {catalog.ATTR_POOL_NAME: stats.name,
                                       catalog.ATTR_POOL_DESTROY_REASON: reason}))
        return result

    def _db_count_points(self) -> Points:
        result: list[tuple[float | None, Attributes]] = []
        for stats in self._snapshots(self._db_sources):
            result.append((stats.idle, {catalog.ATTR_DB_POOL_NAME: stats.name,
                                        catalog.ATTR_DB_STATE: "idle"}))
            result.append((stats.borrowed, {catalog.ATTR_DB_POOL_NAME: stats.name,
                                            catalog.ATTR_DB_STATE: "used"}))
        return result


_registry: weakref.WeakKeyDictionary[metrics.MeterProvider, ProviderInstruments] = (
    weakref.WeakKeyDictionary())
_registry_lock = ProcessLock()   # a forked child gets a fresh one


def instruments_for(meter_provider: metrics.MeterProvider | None) -> ProviderInstruments:
    """The shared pool instruments of ``meter_provider`` (None: the global provider)."""
    provider = meter_provider or metrics.get_meter_provider()
    with _registry_lock:
        shared = _registry.get(provider)
        if shared is None:
            shared = ProviderInstruments(provider)
            _registry[provider] = shared
        return shared


class PoolRecorder:
    """The histograms of one pool, with its attributes computed once.

    Example::

        recorder = PoolRecorder(instruments_for(None), "db", db=True)
        recorder.record_wait(0.02)
    """

    def __init__(self, shared: ProviderInstruments, name: str, *, pool_metrics: bool = True,
                 db: bool = False) -> None:
        self.shared = shared
        self.pool_metrics = pool_metrics
        self.db = db
        self._attrs: Attributes = {catalog.ATTR_POOL_NAME: name}
        self._db_attrs: Attributes = {catalog.ATTR_DB_POOL_NAME: name}

    def _record(self, seconds: float, memory: Histogram, db: Histogram) -> None:
        if self.pool_metrics:
            memory.record(seconds, self._attrs)
        if self.db:
            db.record(seconds, self._db_attrs)

    def record_wait(self, seconds: float) -> None:
        """A borrow waited ``seconds`` for an object (memory.pool.wait_time: waited borrows only)."""
        if self.pool_metrics:
            self.shared.wait_time.record(seconds, self._attrs)

    def record_db_wait(self, seconds: float) -> None:
        """A connection was obtained in ``seconds`` (db.client.connection.wait_time only)."""
        if self.db:
            self.shared.db_wait_time.record(seconds, self._db_attrs)

    def record_create(self, seconds: float) -> None:
        """The factory took ``seconds``."""
        self._record(seconds, self.shared.create_time, self.shared.db_create_time)

    def record_use(self, seconds: float) -> None:
        """A borrower held an object ``seconds``."""
        self._record(seconds, self.shared.use_time, self.shared.db_use_time)
