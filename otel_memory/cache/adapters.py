"""Existing caches made observable and pressure-aware: functools.lru_cache and cachetools.

``instrument_lru_cache(func, name=...)`` exports the function's ``cache_info()`` (hits, misses,
entries, limit); ``instrument_cachetools(cache, name=...)`` a cachetools cache's entries and
fill (``currsize``/``maxsize`` are bytes when the cache has a ``getsizeof``, else entries), and
hits and misses too when given a function decorated with ``cachetools.cached(..., info=True)``.
Both report through the same memory.cache.* metrics as SmartCache and follow the same pressure
policy: a cachetools cache shrinks (``popitem``) to the policy's share of its maxsize; an
lru_cache cannot shrink, so it is cleared where the policy keeps nothing (CRITICAL).

The returned handle lives as long as the cache (it is attached to it); ``close()`` stops it.

Example::

    @functools.lru_cache(maxsize=256)
    def lookup(key): ...

    instrument_lru_cache(lookup, name="lookup", memory_manager=manager)
    instrument_cachetools(cachetools.TTLCache(1024, 60), name="sessions", lock=sessions_lock)
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics

from ..errors import ConfigError
from ..pressure import MemoryPressure
from .metrics import EVICTION_REASONS, PRESSURE, CacheStats, cache_instruments
from .policy import DEFAULT_POLICY, CacheBudgetPolicy

if TYPE_CHECKING:
    from ..manager import MemoryManager

HANDLE_ATTRIBUTE = "otel_memory_cache"


class InstrumentedCache:
    """The metrics and pressure handling attached to an existing cache.

    Example::

        handle = instrument_lru_cache(lookup, name="lookup")
        handle.cache_stats().hits
        handle.close()
    """

    pressure_action = "cache_shrink"

    def __init__(self, target: Any, name: str, memory_manager: MemoryManager | None,
                 meter_provider: metrics.MeterProvider | None, policy: CacheBudgetPolicy,
                 lock: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"name={name!r}; expected a non-empty string naming the cache")
        self.name = name
        self._target = weakref.ref(target)
        self._policy = policy
        self._lock = lock if lock is not None else contextlib.nullcontext()
        self._guard = threading.Lock()
        self.evictions = [0] * len(EVICTION_REASONS)
        self._manager = memory_manager
        if meter_provider is None and memory_manager is not None:
            meter_provider = memory_manager.meter_provider
        self._instruments = cache_instruments(meter_provider)
        setattr(target, HANDLE_ATTRIBUTE, self)
        self._instruments.register(self)
        if memory_manager is not None:
            memory_manager.register_responder(self)

    def cache_stats(self) -> CacheStats:
        """Counters and fill of the cache now."""
        raise NotImplementedError

    def respond_to_pressure(self, level: MemoryPressure) -> bool:
        """Apply the pressure policy for ``level``; True when entries were removed."""
        raise NotImplementedError

    def _evictions(self) -> dict[str, int]:
        return dict(zip(EVICTION_REASONS, self.evictions, strict=True))

    def close(self) -> None:
        """Stop reporting and responding; the cache itself is untouched."""
        self._instruments.unregister(self)
        if self._manager is not None:
            self._manager.unregister_responder(self)
        target = self._target()
        if target is not None and getattr(target, HANDLE_ATTRIBUTE, None) is self:
            delattr(target, HANDLE_ATTRIBUTE)


class _LruCacheHandle(InstrumentedCache):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hits_before = 0      # counts of cache_info() cleared under pressure
        self._misses_before = 0

    def cache_stats(self) -> CacheStats:
        func = self._target()
        with self._guard:   # info and the counts of earlier clears from the same moment
            info = func.cache_info() if func is not None else None
            return CacheStats(
                name=self.name, hits=self._hits_before + (info.hits if info else 0),
                misses=self._misses_before + (info.misses if info else 0),
                entries=info.currsize if info else 0, max_entries=info.maxsize if info else None,
                evictions=self._evictions())

    def respond_to_pressure(self, level: MemoryPressure) -> bool:
        func = self._target()
        if func is None or self._policy.budget_fraction(level) > 0:
            return False
        with self._guard:
            info = func.cache_info()
            func.cache_clear()
            self._hits_before += info.hits
            self._misses_before += info.misses
            self.evictions[PRESSURE] += info.currsize
        return bool(info.currsize > 0)


class _CachetoolsHandle(InstrumentedCache):
    def __init__(self, target: Any, *args: Any, **kwargs: Any) -> None:
        self._info = getattr(target, "cache_info", None)
        cache = target.cache if self._info is not None else target
        super().__init__(cache, *args, **kwargs)
        self._sized = getattr(cache, "getsizeof", None) is not _default_getsizeof()

    def cache_stats(self) -> CacheStats:
        cache = self._target()
        info = self._info() if self._info is not None else None
        entries = len(cache) if cache is not None else 0
        maxsize = int(cache.maxsize) if cache is not None else None
        currsize = int(cache.currsize) if cache is not None else None
        with self._guard:
            return CacheStats(
                name=self.name, hits=info.hits if info else None, misses=info.misses if info else None,
                entries=entries, max_entries=None if self._sized else maxsize,
                usage_bytes=currsize if self._sized else None,
                max_bytes=maxsize if self._sized else None, evictions=self._evictions())

    def respond_to_pressure(self, level: MemoryPressure) -> bool:
        cache = self._target()
        if cache is None:
            return False
        target = int(cache.maxsize * self._policy.budget_fraction(level))
        removed = 0
        with self._lock:
            while len(cache) and cache.currsize > target:
                cache.popitem()
                removed += 1
        with self._guard:
            self.evictions[PRESSURE] += removed
        return removed > 0


def _default_getsizeof() -> Any:
    import cachetools

    return cachetools.Cache.getsizeof


def instrument_lru_cache(func: Callable[..., Any], *, name: str,
                         memory_manager: MemoryManager | None = None,
                         meter_provider: metrics.MeterProvider | None = None,
                         pressure_policy: CacheBudgetPolicy = DEFAULT_POLICY) -> InstrumentedCache:
    """Export ``func.cache_info()`` as memory.cache.* metrics; clear it at CRITICAL pressure."""
    if not (callable(getattr(func, "cache_info", None)) and callable(getattr(func, "cache_clear", None))):
        raise ConfigError(f"instrument_lru_cache({type(func).__name__}): expected a function "
                          "decorated with functools.lru_cache or functools.cache")
    return _LruCacheHandle(func, name, memory_manager, meter_provider, pressure_policy)


def instrument_cachetools(cache: Any, *, name: str, memory_manager: MemoryManager | None = None,
                          meter_provider: metrics.MeterProvider | None = None,
                          lock: Any = None,
                          pressure_policy: CacheBudgetPolicy = DEFAULT_POLICY) -> InstrumentedCache:
    """Export a cachetools cache (or a ``cachetools.cached(..., info=True)`` function).

    ``lock``: the lock your code uses around the cache, held while pressure shrinks it.
    """
    inner = cache.cache if callable(getattr(cache, "cache_info", None)) else cache
    if not all(hasattr(inner, attribute) for attribute in ("maxsize", "currsize", "popitem")):
        raise ConfigError(f"instrument_cachetools({type(cache).__name__}): expected a cachetools "
                          "cache or a function decorated with cachetools.cached(..., info=True)")
    return _CachetoolsHandle(cache, name, memory_manager, meter_provider, pressure_policy, lock)
