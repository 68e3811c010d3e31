"""smart_cached: functions and methods cached in a SmartCache with the same bounds."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.cache import SmartCache, smart_cached
from otel_memory.cache.decorator import make_key
from otel_memory.pressure import MemoryPressure

PROVIDER = MeterProvider()


def test_function_results_are_cached_by_arguments() -> None:
    calls: list[tuple[Any, ...]] = []

    @smart_cached(max_entries=10, ttl_seconds=None, meter_provider=PROVIDER)
    def power(base: int, exponent: int = 2) -> int:
        calls.append((base, exponent))
        return int(base**exponent)

    assert power(3) == 9 and power(3) == 9
    assert power(3, exponent=3) == 27 and power(3, exponent=3) == 27
    assert power(2, 3) == 8
    assert calls == [(3, 2), (3, 3), (2, 3)]
    assert isinstance(power.cache, SmartCache)
    assert power.cache.name.endswith("test_function_results_are_cached_by_arguments.<locals>.power")
    assert power.__name__ == "power" and power.__wrapped__ is not None
    stats = power.cache.cache_stats()
    assert (stats.hits, stats.misses, stats.loads["success"]) == (2, 3, 3)
    power.cache_clear()
    power(3)
    assert len(calls) == 4


def test_methods_are_cached_per_instance() -> None:
    class Repository:
        def __init__(self, prefix: str) -> None:
            self.prefix = prefix
            self.loads = 0

        @smart_cached(max_entries=10, name="repository", meter_provider=PROVIDER)
        def find(self, key: str) -> str:
            self.loads += 1
            return self.prefix + key

    first, second = Repository("a:"), Repository("b:")
    assert first.find("x") == "a:x" and first.find("x") == "a:x"
    assert second.find("x") == "b:x"
    assert (first.loads, second.loads) == (1, 1)


def test_concurrent_calls_compute_once() -> None:
    gate = threading.Event()
    calls = []

    @smart_cached(meter_provider=PROVIDER)
    def slow(key: int) -> int:
        calls.append(key)
        gate.wait(5)
        return key * 10

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow(4))) for _ in range(6)]
    for thread in threads:
        thread.start()
    while slow.cache.misses < 6:
        threading.Event().wait(0.001)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert calls == [4] and results == [40] * 6


def test_refused_results_are_still_returned() -> None:
    @smart_cached(max_memory_mb=1, meter_provider=PROVIDER)
    def build(size: int) -> bytes:
        return bytes(size)

    assert len(build(2 * 1024 * 1024)) == 2 * 1024 * 1024         # too large: returned uncached
    build.cache.respond_to_pressure(MemoryPressure.CRITICAL)
    assert build(10) == bytes(10) and len(build.cache) == 0


def test_bad_uses_are_clear_errors() -> None:
    @smart_cached(meter_provider=PROVIDER)
    def identity(value: Any) -> Any:
        return value

    with pytest.raises(TypeError, match="arguments must be hashable"):
        identity([1, 2])
    with pytest.raises(TypeError, match="coroutine function"):
        @smart_cached(meter_provider=PROVIDER)
        async def fetch() -> None: ...


def test_make_key() -> None:
    assert make_key((5,), {}) == 5
    assert make_key((5, 6), {}) == (5, 6)
    assert make_key((5,), {"b": 1, "a": 2}) == make_key((5,), {"a": 2, "b": 1})
    assert make_key((5,), {"a": 2}) != make_key((5, "a", 2), {})
