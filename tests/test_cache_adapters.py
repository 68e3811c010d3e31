"""functools.lru_cache and cachetools caches reported through memory.cache.* and pressure-aware."""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import cachetools
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog as c
from otel_memory.cache import instrument_cachetools, instrument_lru_cache
from otel_memory.errors import ConfigError
from otel_memory.pressure import MemoryPressure
from tests.conftest import collect, points
from tests.test_cache_policy import DrivenManager

NAME = c.ATTR_CACHE_NAME


@pytest.fixture
def driven(tmp_path: Path, meter_provider: MeterProvider) -> Iterator[DrivenManager]:
    driver = DrivenManager(tmp_path / "proc", meter_provider)
    yield driver
    driver.manager.shutdown()


def values(reader: InMemoryMetricReader, spec: c.MetricSpec, name: str) -> dict[str, float]:
    """{the non-name attribute value (or ''): value} of cache ``name``."""
    result = {}
    for value, attributes in points(collect(reader), spec.name):
        if attributes.pop(NAME) == name:
            result[next(iter(attributes.values()), "")] = value
    return result


def test_lru_cache_info_is_exported_and_cleared_at_critical(
        driven: DrivenManager, reader: InMemoryMetricReader) -> None:
    @functools.lru_cache(maxsize=64)
    def square(number: int) -> int:
        return number * number

    handle = instrument_lru_cache(square, name="squares", memory_manager=driven.manager)
    for number in (1, 2, 3, 1, 1):
        square(number)
    assert values(reader, c.MEMORY_CACHE_REQUESTS, "squares") == {"hit": 2, "miss": 3}
    assert values(reader, c.MEMORY_CACHE_ENTRIES, "squares") == {"": 3}
    assert values(reader, c.MEMORY_CACHE_ENTRIES_LIMIT, "squares") == {"": 64}
    driven.drive(750)                                        # HIGH: an lru_cache cannot shrink
    assert square.cache_info().currsize == 3
    driven.drive(850)                                        # CRITICAL: cleared
    assert square.cache_info().currsize == 0
    assert driven.manager.actions["cache_shrink"] == 1
    square(4)
    assert values(reader, c.MEMORY_CACHE_REQUESTS, "squares") == {"hit": 2, "miss": 4}
    assert values(reader, c.MEMORY_CACHE_EVICTIONS, "squares")["pressure"] == 3
    handle.close()
    assert values(reader, c.MEMORY_CACHE_ENTRIES, "squares") == {}


def test_handle_lives_as_long_as_the_function(meter_provider: MeterProvider,
                                              reader: InMemoryMetricReader) -> None:
    @functools.lru_cache(maxsize=8)
    def double(number: int) -> int:
        return 2 * number

    instrument_lru_cache(double, name="doubles", meter_provider=meter_provider)
    gc.collect()
    double(1)
    assert values(reader, c.MEMORY_CACHE_ENTRIES, "doubles") == {"": 1}
    del double
    gc.collect()
    assert values(reader, c.MEMORY_CACHE_ENTRIES, "doubles") == {}


def test_unbounded_functools_cache_has_no_entry_limit(meter_provider: MeterProvider,
                                                     reader: InMemoryMetricReader) -> None:
    @functools.cache
    def triple(number: int) -> int:
        return 3 * number

    instrument_lru_cache(triple, name="triples", meter_provider=meter_provider)
    triple(1)
    assert values(reader, c.MEMORY_CACHE_ENTRIES, "triples") == {"": 1}
    assert values(reader, c.MEMORY_CACHE_ENTRIES_LIMIT, "triples") == {}


def test_cachetools_cache_with_getsizeof_reports_bytes_and_shrinks(
        driven: DrivenManager, reader: InMemoryMetricReader) -> None:
    cache: cachetools.LRUCache[int, bytes] = cachetools.LRUCache(maxsize=100_000, getsizeof=len)
    lock = threading.Lock()
    instrument_cachetools(cache, name="blobs", memory_manager=driven.manager, lock=lock)
    for key in range(10):
        cache[key] = bytes(9_000)
    assert values(reader, c.MEMORY_CACHE_USAGE, "blobs") == {"": 90_000}
    assert values(reader, c.MEMORY_CACHE_USAGE_LIMIT, "blobs") == {"": 100_000}
    assert values(reader, c.MEMORY_CACHE_ENTRIES, "blobs") == {"": 10}
    assert values(reader, c.MEMORY_CACHE_REQUESTS, "blobs") == {}     # cachetools does not count
    driven.drive(650)                                                 # MODERATE: 75% of maxsize
    assert cache.currsize <= 75_000 and len(cache) == 8
    assert 9 in cache and 0 not in cache                              # its own LRU order
    driven.drive(850)
    assert len(cache) == 0
    assert values(reader, c.MEMORY_CACHE_EVICTIONS, "blobs")["pressure"] == 10


def test_cachetools_entry_counted_cache_and_cached_function_info(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    plain = cachetools.TTLCache(maxsize=50, ttl=60)
    plain["a"] = 1
    instrument_cachetools(plain, name="plain", meter_provider=meter_provider)
    assert values(reader, c.MEMORY_CACHE_ENTRIES_LIMIT, "plain") == {"": 50}
    assert values(reader, c.MEMORY_CACHE_USAGE, "plain") == {}

    @cachetools.cached(cachetools.LRUCache(maxsize=10), info=True)
    def length(text: str) -> int:
        return len(text)

    handle = instrument_cachetools(length, name="lengths", meter_provider=meter_provider)
    for text in ("a", "bb", "a"):
        length(text)
    assert values(reader, c.MEMORY_CACHE_REQUESTS, "lengths") == {"hit": 1, "miss": 2}
    assert handle.respond_to_pressure(MemoryPressure.CRITICAL) is True
    assert values(reader, c.MEMORY_CACHE_ENTRIES, "lengths") == {"": 0}


def test_bad_targets_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match=r"functools\.lru_cache"):
        instrument_lru_cache(len, name="len")
    with pytest.raises(ConfigError, match="cachetools cache"):
        instrument_cachetools({}, name="dict")

    @functools.lru_cache
    def f() -> None: ...

    with pytest.raises(ConfigError, match="name=''"):
        instrument_lru_cache(f, name="")


class ClearedWhileRead:
    """A real lru_cache function whose cache_info() lets another thread clear it (pressure)
    between reading the counts and adding the counts of earlier clears to them."""

    def __init__(self, func: functools._lru_cache_wrapper[int]) -> None:
        self.func = func
        self.during_info: threading.Thread | None = None

    def cache_info(self) -> functools._CacheInfo:
        info = self.func.cache_info()
        thread, self.during_info = self.during_info, None
        if thread is not None:
            thread.start()
            thread.join(timeout=0.2)       # with the fix it waits for us, and times out here
        return info

    def cache_clear(self) -> None:
        self.func.cache_clear()


def test_lru_counts_stay_right_when_pressure_clears_during_a_read(meter_provider: MeterProvider) -> None:
    @functools.lru_cache(maxsize=64)
    def square(number: int) -> int:
        return number * number

    for number in (1, 2, 1, 1):
        square(number)                                      # 2 hits, 2 misses
    target = ClearedWhileRead(square)
    handle = instrument_lru_cache(target, name="cleared-while-read", meter_provider=meter_provider)
    clear = threading.Thread(target=handle.respond_to_pressure, args=(MemoryPressure.CRITICAL,))
    target.during_info = clear
    stats = handle.cache_stats()
    clear.join(timeout=5)
    assert (stats.hits, stats.misses) == (2, 2)              # not 4 and 4: counted once
    after = handle.cache_stats()
    assert (after.hits, after.misses, after.entries) == (2, 2, 0)
    handle.close()
