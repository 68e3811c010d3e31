"""The memory.cache.* instruments, shared by every cache of one meter provider.

The OpenTelemetry SDK keeps the first callback of an instrument name and drops the others, so
caches do not create instruments each: the first cache of a meter provider creates one set of
observable instruments whose callbacks read every registered cache (held weakly) through its
``cache_stats()``. Caches of the same name are added together. Nothing here runs on a cache hit;
the only synchronous instrument is the load-duration histogram, recorded on a miss that loads.

Example::

    instruments = cache_instruments(meter_provider)
    instruments.register(cache)              # anything with cache_stats() -> CacheStats
    instruments.record_load("users", 0.012)
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import metrics

from .. import catalog as c
from ..errors import error_summary
from ..forking import ProcessLock
from ..instruments import InstrumentSet, Points, get_meter

_log = logging.getLogger("otel_memory")

EVICTION_REASONS = ("size", "memory", "expired", "pressure", "explicit")
SIZE, MEMORY, EXPIRED, PRESSURE, EXPLICIT = range(len(EVICTION_REASONS))
LOAD_SUCCESS = "success"
LOAD_FAILURE = "failure"


@dataclass(frozen=True)
class CacheStats:
    """Counters and fill of one cache at one moment; None where the cache cannot tell.

    Example::

        stats = cache.cache_stats()
        stats.hits / (stats.hits + stats.misses), stats.evictions["memory"]
    """

    name: str
    hits: int | None
    misses: int | None
    entries: int
    max_entries: int | None = None
    usage_bytes: int | None = None
    max_bytes: int | None = None
    evictions: Mapping[str, int] = field(default_factory=dict)
    evicted_bytes: Mapping[str, int] = field(default_factory=dict)
    loads: Mapping[str, int] = field(default_factory=dict)


class CacheStatsSource(Protocol):
    """A cache the instruments can read: anything with ``cache_stats()``.

    Example::

        class MyCache:
            def cache_stats(self) -> CacheStats:
                return CacheStats(name="mine", hits=self.hits, misses=self.misses, entries=len(self))

        cache_instruments(None).register(MyCache())
    """

    def cache_stats(self) -> CacheStats: ...


def _add(total: dict[tuple[str, str], float], name: str, key: str, value: float | None) -> None:
    if value is not None:
        total[(name, key)] = total.get((name, key), 0) + value


class CacheInstruments:
    """The cache instruments of one meter provider; see the module docstring.

    Example::

        cache_instruments(None).register(cache)      # the global meter provider
    """

    def __init__(self, meter: metrics.Meter) -> None:
        self._sources: weakref.WeakSet[Any] = weakref.WeakSet()
        self._failed: set[str] = set()
        self._set = InstrumentSet(meter)
        observe = self._set.observe
        observe(c.MEMORY_CACHE_REQUESTS, lambda: self._points(
            c.ATTR_CACHE_RESULT, lambda s: {"hit": s.hits, "miss": s.misses}))
        observe(c.MEMORY_CACHE_ENTRIES, lambda: self._points(None, lambda s: {"": s.entries}))
        observe(c.MEMORY_CACHE_ENTRIES_LIMIT, lambda: self._points(None, lambda s: {"": s.max_entries}))
        observe(c.MEMORY_CACHE_USAGE, lambda: self._points(None, lambda s: {"": s.usage_bytes}))
        observe(c.MEMORY_CACHE_USAGE_LIMIT, lambda: self._points(None, lambda s: {"": s.max_bytes}))
        observe(c.MEMORY_CACHE_EVICTIONS, lambda: self._points(
            c.ATTR_CACHE_EVICTION_REASON, lambda s: s.evictions))
        observe(c.MEMORY_CACHE_EVICTED, lambda: self._points(
            c.ATTR_CACHE_EVICTION_REASON, lambda s: s.evicted_bytes))
        observe(c.MEMORY_CACHE_LOADS, lambda: self._points(c.ATTR_CACHE_LOAD_RESULT, lambda s: s.loads))
        self._load_duration = self._set.histogram(c.MEMORY_CACHE_LOAD_DURATION)

    def _warn_once(self, source: CacheStatsSource, error: Exception) -> None:
        name = str(getattr(source, "name", type(source).__name__))
        if name not in self._failed:
            self._failed.add(name)
            _log.warning("otel_memory: cache %r is left out of the cache metrics: its stats "
                         "failed with %s", name, error_summary(error))

    def register(self, source: CacheStatsSource) -> None:
        """Report ``source`` from now on, for as long as it lives."""
        self._sources.add(source)

    def unregister(self, source: CacheStatsSource) -> None:
        """Stop reporting ``source``."""
        self._sources.discard(source)

    def record_load(self, name: str, seconds: float) -> None:
        """Record one loader call of the cache ``name`` (slow path only)."""
        self._load_duration.record(seconds, {c.ATTR_CACHE_NAME: name})

    def _points(self, attribute: str | None,
                values: Any) -> Points:
        total: dict[tuple[str, str], float] = {}
        for source in list(self._sources):
            try:
                stats: CacheStats = source.cache_stats()
            except Exception as error:  # noqa: BLE001 - one broken cache must not blank the others
                self._warn_once(source, error)
                continue
            for key, value in values(stats).items():
                _add(total, stats.name, key, value)
        result: list[tuple[float | None, dict[str, Any]]] = []
        for (name, key), value in total.items():
            attributes = {c.ATTR_CACHE_NAME: name}
            if attribute is not None:
                attributes[attribute] = key
            result.append((value, attributes))
        return result


_registries: weakref.WeakKeyDictionary[Any, CacheInstruments] = weakref.WeakKeyDictionary()
_global: list[CacheInstruments] = []
_lock = ProcessLock()   # the registry's (a forked child gets a fresh one)


def cache_instruments(meter_provider: metrics.MeterProvider | None) -> CacheInstruments:
    """The shared cache instruments of ``meter_provider`` (None: the global provider).

    Every cache of the global provider shares one set, made through the provider global at the
    time: before ``set_meter_provider`` that is the API's proxy, which forwards to the real
    provider once set, so caches made before and after it report through the same instruments.
    """
    with _lock:
        if meter_provider is None or meter_provider is metrics.get_meter_provider():
            if not _global:
                _global.append(CacheInstruments(get_meter(None)))
            return _global[0]
        instruments = _registries.get(meter_provider)
        if instruments is None:
            instruments = CacheInstruments(get_meter(meter_provider))
            _registries[meter_provider] = instruments
        return instruments
