"""SmartCache: an LRU + TTL cache bounded in entries and in honestly counted bytes.

Entries live in an EntryStore (``store.py``: an OrderedDict in LRU order and an expiry heap,
so expired entries are found without a scan and are removed first of all). Every operation
runs under one lock; a hit is a dict lookup, ``move_to_end`` and ``hits += 1``, with no OpenTelemetry call:
the counters are exported by observable instruments (``metrics.py``). Sizing a value runs
before the lock is taken, and evicted values are released after it is let go, so a value's
``__del__`` never runs inside the cache's lock.

With a MemoryManager the cache registers as a pressure responder and follows its pressure
policy (``policy.py``): a smaller budget at MODERATE and HIGH, cleared and refusing inserts at
CRITICAL, back to the full budget when pressure falls.

Example::

    cache: SmartCache[str, bytes] = SmartCache(manager, 1000, 50, 300, name="users")
    cache.insert("user:123", payload)
    if (data := cache.get("user:123")) is not None:
        ...
    profile = cache.get_or_load("user:7", load_profile)     # concurrent misses load once
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, ItemsView, Iterator, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from opentelemetry import metrics

from .. import forking
from ..config import MAX_MB, MB
from ..errors import ArgumentTypeError, CacheRefused, ConfigError, EntryTooLarge, SizerError
from ..pressure import MemoryPressure
from . import sizing
from .loading import Flight
from .metrics import (
    EVICTION_REASONS,
    EXPIRED,
    EXPLICIT,
    LOAD_FAILURE,
    LOAD_SUCCESS,
    PRESSURE,
    CacheStats,
    cache_instruments,
)
from .policy import DEFAULT_POLICY, CacheBudgetPolicy
from .store import NEVER, EntryStore

if TYPE_CHECKING:
    from ..manager import MemoryManager

_log = logging.getLogger("otel_memory")

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")

_MISSING: Any = object()


def _check_ttl(field: str, ttl: Any) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or math.isnan(ttl) or ttl <= 0:
        raise ConfigError(f"{field}={ttl!r}; expected a number of seconds > 0, math.inf or None")
    return None if math.isinf(ttl) else float(ttl)


class SmartCache(EntryStore[K], MutableMapping[K, V], Generic[K, V]):
    """A thread-safe, memory-bounded, self-instrumented LRU cache with TTL; see the module docstring.

    ``ttl_seconds=None`` (or math.inf) keeps entries until evicted; ``insert(..., ttl_seconds=)``
    overrides it per entry. ``sizer``: None (estimate two levels deep), "deep" (pympler) or a
    callable sizing a value in bytes; keys are always estimated. Caches compare by identity.
    ``in``, ``len()`` and iteration are not requests; the ``items()`` and ``values()`` views
    read through ``[]``, so they count as hits and refresh the entries they read.

    Example::

        cache = SmartCache(None, max_entries=500, max_memory_mb=8, ttl_seconds=60, name="pages")
        cache["/"] = html
        cache.get("/"), "/" in cache, len(cache), cache.usage_bytes
    """

    pressure_action = "cache_shrink"
    __hash__ = object.__hash__      # a responder lives in the manager's WeakSet
    __eq__ = object.__eq__          # type: ignore[assignment]

    def __init__(
        self,
        memory_manager: MemoryManager | None = None,
        max_entries: int = 1000,
        max_memory_mb: float = 50,
        ttl_seconds: float | None = 300,
        *,
        name: str = "smart_cache",
        sizer: sizing.Sizer | str | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        timer: Callable[[], float] = time.monotonic,
        pressure_policy: CacheBudgetPolicy = DEFAULT_POLICY,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigError(f"max_entries={max_entries!r}; expected an integer >= 1")
        if (isinstance(max_memory_mb, bool) or not isinstance(max_memory_mb, (int, float))
                or not 0 < max_memory_mb <= MAX_MB):
            raise ConfigError(f"max_memory_mb={max_memory_mb!r}; expected a finite number of "
                              f"megabytes > 0 and <= {MAX_MB:g} (2**63 bytes)")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"name={name!r}; expected a non-empty string naming the cache")
        if not callable(timer):
            raise ConfigError(f"timer={timer!r}; expected a callable returning seconds")
        if memory_manager is not None and not hasattr(memory_manager, "register_responder"):
            raise ConfigError(f"memory_manager={type(memory_manager).__name__}; expected a "
                              "MemoryManager or None")
        smallest = sizing.ENTRY_OVERHEAD + sizing.EXPIRY_OVERHEAD
        if int(max_memory_mb * MB) < smallest:
            raise ConfigError(f"max_memory_mb={max_memory_mb!r} is a budget of {int(max_memory_mb * MB)} "
                              f"bytes; expected at least {smallest / MB:.6f} MB ({smallest} bytes, "
                              "what one entry costs the cache itself)")
        if not all(callable(getattr(pressure_policy, method, None))
                   for method in ("budget_fraction", "refuses_inserts")):
            raise ArgumentTypeError(f"pressure_policy={type(pressure_policy).__name__}; expected a "
                                    "CachePressurePolicy (budget_fraction(level) and refuses_inserts(level))")
        EntryStore.__init__(self, max_entries, int(max_memory_mb * MB))
        self.name = name
        self.ttl_seconds = _check_ttl("ttl_seconds", ttl_seconds)
        self._sizer = sizing.resolve_sizer(sizer)
        self._timer = timer
        self._policy = pressure_policy
        self._lookup = self._data.get
        self._touch = self._data.move_to_end
        self._refusing = False
        self._pressure = MemoryPressure.LOW
        self._lock = threading.Lock()
        self._loading: dict[K, Flight] = {}
        self._warned: set[str] = set()   # kinds of load failures already logged
        self._reset_counts()
        self._manager = memory_manager
        if meter_provider is None and memory_manager is not None:
            meter_provider = memory_manager.meter_provider
        self._instruments = cache_instruments(meter_provider)
        self._instruments.register(self)
        forking.after_fork_in_child(self)
        if memory_manager is not None:
            memory_manager.register_responder(self)
            level = memory_manager.get_memory_pressure()
            if level != MemoryPressure.LOW:
                self.respond_to_pressure(level)

    def _reset_counts(self) -> None:
        self.hits = 0
        self.misses = 0
        self.evictions = [0] * len(EVICTION_REASONS)
        self.evicted_bytes = [0] * len(EVICTION_REASONS)
        self.loads = {LOAD_SUCCESS: 0, LOAD_FAILURE: 0}

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._loading = {}
        self._reset_counts()

    # --- the hot path ---------------------------------------------------------------------

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: D) -> V | D: ...

    def get(self, key: K, default: Any = None) -> Any:
        """The value of ``key`` (now the most recently used), or ``default`` on a miss."""
        with self._lock:
            try:
                entry = self._lookup(key)
            except TypeError as error:
                raise self._bad_key(key, error) from None
            if entry is not None:
                expires = entry[2]
                if expires is NEVER or expires > self._timer():
                    self._touch(key)
                    self.hits += 1
                    return entry[0]
                _expired = self.drop(key, EXPIRED)
            self.misses += 1
        return default

    def __getitem__(self, key: K) -> V:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise self._key_error(key)
        return value  # type: ignore[no-any-return]

    def _key_error(self, key: object) -> KeyError:
        # The key itself stays out of the message: keys can hold user ids or tokens.
        return KeyError(f"no entry for this {type(key).__name__} key in cache {self.name!r}")

    def _bad_key(self, key: object, error: TypeError) -> TypeError:
        """ArgumentTypeError for an unhashable key (named by its type only), else ``error``."""
        try:
            hash(key)
        except TypeError:
            return ArgumentTypeError(f"cache {self.name!r}: a key of type {type(key).__name__} is not "
                                     "hashable; expected a hashable key (str, int, a tuple of those...)")
        return error

    # --- inserting ------------------------------------------------------------------------

    def entry_size(self, key: Any, value: Any) -> int:
        """The bytes an entry of ``key`` and ``value`` (with the cache's TTL) counts against the budget."""
        return self._entry_size(key, value, self.ttl_seconds is not None)

    def _entry_size(self, key: Any, value: Any, expires: bool) -> int:
        sizer = self._sizer
        value_size = sizer(value) if sizer is sizing.estimate_size else sizing.checked_size(sizer, value)
        size = sizing.estimate_size(key) + value_size + sizing.ENTRY_OVERHEAD
        return size + sizing.EXPIRY_OVERHEAD if expires else size

    def insert(self, key: K, value: V, ttl_seconds: float | None = None) -> None:
        """Store ``value`` under ``key`` as the most recently used entry, evicting as needed.

        ``ttl_seconds`` overrides the cache's TTL for this entry (math.inf: never expires).
        Raises EntryTooLarge when the entry alone exceeds ``max_memory_mb`` and CacheRefused
        while memory pressure forbids it (critical, or the entry exceeds the reduced budget).
        A get_or_load of ``key`` in flight will not cache its (older) value.
        """
        self._insert(key, value, ttl_seconds, loaded_by=None)

    def _insert(self, key: K, value: V, ttl_seconds: float | None, loaded_by: Flight | None
                ) -> None:
        """insert(); for a loader's value (``loaded_by`` its flight) nothing is stored when the
        key was set, removed or cleared while it loaded."""
        ttl = self.ttl_seconds if ttl_seconds is None else _check_ttl("ttl_seconds", ttl_seconds)
        size = self._entry_size(key, value, ttl is not None)
        if size > self.max_bytes:
            raise EntryTooLarge(
                f"cache {self.name!r}: an entry of {size} bytes (value of type "
                f"{type(value).__name__}) exceeds the whole budget of {self.max_bytes} bytes "
                f"(max_memory_mb); expected entries smaller than the budget")
        with self._lock:
            if loaded_by is None:
                self._outdate_load(key)
            elif loaded_by.outdated:
                return
            if self._refusing or size > self._budget:
                raise self._refusal(size)
            now = self._timer()
            _expired = self.purge_expired(now) if self.has_expired(now) else None
            try:
                _replaced = self.add(key, value, size, NEVER if ttl is None else now + ttl)
            except TypeError as error:
                raise self._bad_key(key, error) from None
            if self.over_limits():
                _evicted = self.evict_to_limits()
        # _expired, _replaced and _evicted are released here, after the lock: no __del__ inside it.

    def __setitem__(self, key: K, value: V) -> None:
        self.insert(key, value)

    def _outdate_load(self, key: object) -> None:
        """The caller holds the lock: a load of ``key`` in flight is not to cache its value."""
        try:
            flight = self._loading.get(key)  # type: ignore[arg-type]
        except TypeError:   # unhashable: the caller's own lookup says so
            return
        if flight is not None:
            flight.outdated = True

    def _refusal(self, size: int) -> CacheRefused:
        if self._refusing:
            return CacheRefused(f"cache {self.name!r} refuses inserts while memory pressure is "
                                f"{self._pressure.title}")
        return CacheRefused(f"cache {self.name!r}: an entry of {size} bytes exceeds the budget of "
                            f"{self._budget} bytes kept while memory pressure is {self._pressure.title}")

    def __delitem__(self, key: K) -> None:
        if self.pop(key, _MISSING) is _MISSING:
            raise self._key_error(key)

    @overload
    def pop(self, key: K) -> V: ...

    @overload
    def pop(self, key: K, default: V | D) -> V | D: ...

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (an explicit eviction); ``default`` or KeyError if absent."""
        with self._lock:
            try:
                entry = self._lookup(key)
            except TypeError as error:
                raise self._bad_key(key, error) from None
            self._outdate_load(key)
            if entry is not None:
                if entry[2] > self._timer():
                    return self.drop(key, EXPLICIT)[0]
                _expired = self.drop(key, EXPIRED)
        if default is _MISSING:
            raise self._key_error(key)
        return default

    def clear(self) -> None:
        """Remove every entry (explicit evictions; expired ones count as expired)."""
        with self._lock:
            for flight in self._loading.values():
                flight.outdated = True
            removed = self.purge_expired(self._timer())
            while self._data:
                removed.append(self.drop_lru(EXPLICIT))
            self._heap.clear()

    # --- reading without counting ---------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        """True when ``key`` has an unexpired entry; neither a request nor a use."""
        with self._lock:
            try:
                entry = self._data.get(key)  # type: ignore[arg-type]
            except TypeError as error:
                raise self._bad_key(key, error) from None
            return entry is not None and entry[2] > self._timer()

    def __len__(self) -> int:
        """Unexpired entries (expired ones are removed first)."""
        with self._lock:
            _expired = self.purge_expired(self._timer())
            return len(self._data)

    def __iter__(self) -> Iterator[K]:
        """The keys of unexpired entries, least recently used first (a snapshot)."""
        with self._lock:
            _expired = self.purge_expired(self._timer())
            keys = list(self._data)
        return iter(keys)

    def items(self) -> ItemsView[K, V]:
        """The unexpired entries, least recently used first: a snapshot taken at once (entries
        that expire or are evicted meanwhile cannot make it fail); neither requests nor uses."""
        return self._snapshot().items()

    def values(self) -> ValuesView[V]:
        """The values of items(): a snapshot, neither requests nor uses."""
        return self._snapshot().values()

    def _snapshot(self) -> dict[K, V]:
        with self._lock:
            _expired = self.purge_expired(self._timer())
            return {key: entry[0] for key, entry in self._data.items()}

    @property
    def usage_bytes(self) -> int:
        """Bytes the entries count against the budget."""
        return self.bytes

    @property
    def budget_bytes(self) -> int:
        """The memory budget now: max_memory_mb, lowered while memory pressure lasts."""
        return self._budget

    @property
    def refusing(self) -> bool:
        """True while inserts raise CacheRefused."""
        return self._refusing

    def cache_stats(self) -> CacheStats:
        """Counters and fill now (expired entries are removed first)."""
        with self._lock:
            _expired = self.purge_expired(self._timer())
            stats = CacheStats(
                name=self.name, hits=self.hits, misses=self.misses, entries=len(self._data),
                max_entries=self.max_entries, usage_bytes=self.bytes, max_bytes=self._budget,
                evictions=dict(zip(EVICTION_REASONS, self.evictions, strict=True)),
                evicted_bytes=dict(zip(EVICTION_REASONS, self.evicted_bytes, strict=True)),
                loads=dict(self.loads))
        return stats

    def __repr__(self) -> str:
        return (f"SmartCache(name={self.name!r}, entries={len(self._data)}/{self.max_entries}, "
                f"bytes={self.bytes}/{self._budget})")

    # --- loading --------------------------------------------------------------------------

    def get_or_load(self, key: K, loader: Callable[[K], V], ttl_seconds: float | None = None) -> V:
        """The value of ``key``; on a miss ``loader(key)`` computes and caches it.

        Concurrent misses for one key call the loader once; the others wait for its result
        (or its exception). A value the cache refuses (pressure, too large) is returned uncached.
        """
        with self._lock:
            try:
                entry = self._lookup(key)
            except TypeError as error:
                raise self._bad_key(key, error) from None
            if entry is not None:
                expires = entry[2]
                if expires is NEVER or expires > self._timer():
                    self._touch(key)
                    self.hits += 1
                    return entry[0]  # type: ignore[no-any-return]
                _expired = self.drop(key, EXPIRED)
            self.misses += 1
            flight = self._loading.get(key)
            leader = flight is None
            if flight is None:
                flight = self._loading[key] = Flight()
        if not leader:
            if flight.loader_thread == threading.get_ident():
                raise RuntimeError(f"cache {self.name!r}: the loader of a key asked for that same "
                                   "key again; it would wait for itself forever (expected a "
                                   "loader that does not load its own key)")
            return flight.wait()  # type: ignore[no-any-return]
        try:
            value = self._load(key, loader, ttl_seconds, flight)
        except BaseException as error:
            flight.fail(error)
            raise
        else:
            flight.succeed(value)
            return value
        finally:
            with self._lock:
                if self._loading.get(key) is flight:
                    del self._loading[key]

    def _load(self, key: K, loader: Callable[[K], V], ttl_seconds: float | None,
              flight: Flight) -> V:
        start = time.perf_counter()
        try:
            value = loader(key)
        except BaseException:
            self._count_load(LOAD_FAILURE, time.perf_counter() - start)
            raise
        self._count_load(LOAD_SUCCESS, time.perf_counter() - start)
        try:
            self._insert(key, value, ttl_seconds, loaded_by=flight)
        except CacheRefused:
            pass
        except (EntryTooLarge, SizerError) as error:   # the loaded value is not lost
            kind = type(error).__name__
            if kind not in self._warned:
                self._warned.add(kind)
                _log.warning("otel_memory: %s; the value is returned uncached (logged once)", error)
        return value

    def _count_load(self, result: str, seconds: float) -> None:
        with self._lock:
            self.loads[result] += 1
        self._instruments.record_load(self.name, seconds)

    # --- memory pressure ------------------------------------------------------------------

    def respond_to_pressure(self, level: MemoryPressure) -> bool:
        """Apply the pressure policy for ``level``; True when entries were evicted for it."""
        fraction = self._policy.budget_fraction(level)
        if (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                or not 0.0 <= fraction <= 1.0):
            raise ConfigError(f"cache {self.name!r}: pressure_policy.budget_fraction({level.name}) "
                              f"returned {fraction!r}; expected a share of the budget from 0 to 1")
        refuse = self._policy.refuses_inserts(level)
        with self._lock:
            self._pressure = level
            self._budget = int(self.max_bytes * fraction)
            self._refusing = refuse
            removed = self.purge_expired(self._timer())
            before = len(removed)
            while self.bytes > self._budget:
                removed.append(self.drop_lru(PRESSURE))
            shrunk = len(removed) > before
        if shrunk:
            _log.info("otel_memory: cache %r shrank to %d bytes at %s memory pressure",
                      self.name, self.bytes, level.title)
        return shrunk

    def close(self) -> None:
        """Stop reporting metrics and responding to pressure; the entries stay usable."""
        self._instruments.unregister(self)
        if self._manager is not None:
            self._manager.unregister_responder(self)
        forking.forget(self)
