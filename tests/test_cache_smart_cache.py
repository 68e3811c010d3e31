"""SmartCache: LRU and TTL eviction, byte accounting, the mapping protocol, loading, threads."""

from __future__ import annotations

import gc
import json
import random
import sys
import threading
import tracemalloc
import weakref
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog as c
from otel_memory.cache import SmartCache
from otel_memory.cache.sizing import ENTRY_OVERHEAD, EXPIRY_OVERHEAD, estimate_size
from otel_memory.config import MB
from otel_memory.errors import CacheRefused, ConfigError, EntryTooLarge
from otel_memory.pressure import MemoryPressure
from tests.conftest import collect, points


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(max_entries: int = 10, max_memory_mb: float = 1, ttl: float | None = None,
         clock: FakeClock | None = None, **kwargs: Any) -> SmartCache[Any, Any]:
    kwargs.setdefault("meter_provider", MeterProvider())
    return SmartCache(None, max_entries, max_memory_mb, ttl, timer=clock or FakeClock(), **kwargs)


def test_insert_get_counts_hits_and_misses() -> None:
    cache = make()
    cache.insert("a", b"1")
    assert cache.get("a") == b"1"
    assert cache.get("b") is None
    assert cache.get("b", "dflt") == "dflt"
    stats = cache.cache_stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 2, 1)


def test_lru_order_decides_what_the_entry_limit_evicts() -> None:
    cache = make(max_entries=3)
    for key in "abc":
        cache.insert(key, key)
    cache.get("a")                      # b is now the least recently used
    cache.insert("d", "d")
    assert list(cache) == ["c", "a", "d"]
    assert cache.cache_stats().evictions["size"] == 1


def test_byte_budget_evicts_least_recently_used_and_counts_bytes() -> None:
    cache = make(max_entries=100, max_memory_mb=1, sizer=len)
    big = bytes(300 * 1024)
    for key in range(3):
        cache.insert(key, big)
    size = cache.entry_size(0, big)
    assert cache.usage_bytes == 3 * size
    cache.insert(3, big)                # 4 x 300 KiB > 1 MiB: key 0 goes
    assert list(cache) == [1, 2, 3]
    stats = cache.cache_stats()
    assert stats.evictions["memory"] == 1 and stats.evicted_bytes["memory"] == size
    assert cache.usage_bytes == 3 * size <= cache.budget_bytes


def test_entry_size_counts_key_value_and_overhead() -> None:
    cache = make(ttl=None)
    value = {"name": "x" * 100, "tags": ["a" * 10, "b" * 20]}
    assert cache.entry_size("key-1", value) == estimate_size("key-1") + estimate_size(value) + ENTRY_OVERHEAD
    with_ttl = make(ttl=5)
    assert with_ttl.entry_size("key-1", value) == cache.entry_size("key-1", value) + EXPIRY_OVERHEAD


def test_ttl_expiry_and_per_entry_override() -> None:
    clock = FakeClock()
    cache = make(ttl=10, clock=clock)
    cache.insert("short", 1)
    cache.insert("long", 2, ttl_seconds=100)
    cache.insert("forever", 3, ttl_seconds=float("inf"))
    clock.advance(10)
    assert cache.get("short") is None
    assert "long" in cache and cache.get("long") == 2
    clock.advance(1000)
    assert cache.get("long") is None
    assert cache.get("forever") == 3
    assert cache.cache_stats().evictions["expired"] == 2


def test_get_or_load_honours_the_ttl_override() -> None:
    clock = FakeClock()
    cache = make(ttl=100, clock=clock)
    cache.get_or_load("short", str.upper, ttl_seconds=1)
    cache.get_or_load("default", str.upper)
    clock.advance(2)
    assert "short" not in cache and "default" in cache


def test_expired_entries_go_before_least_recently_used_ones() -> None:
    clock = FakeClock()
    cache = make(max_entries=3, ttl=None, clock=clock)
    cache.insert("old-live", 1)
    cache.insert("expiring", 2, ttl_seconds=5)
    cache.insert("new-live", 3)
    clock.advance(6)
    cache.insert("d", 4)                # full: the expired entry goes, not the LRU one
    assert list(cache) == ["old-live", "new-live", "d"]
    evictions = cache.cache_stats().evictions
    assert (evictions["expired"], evictions["size"]) == (1, 0)


def test_entry_larger_than_the_budget_is_refused_with_a_clear_error() -> None:
    cache = make(max_memory_mb=0.01)
    secret = "password=hunter2" + "x" * 20000
    with pytest.raises(EntryTooLarge) as raised:
        cache.insert("k", secret)
    message = str(raised.value)
    assert "exceeds the whole budget" in message and str(cache.max_bytes) in message
    assert "hunter2" not in message and "str" in message
    assert len(cache) == 0 and cache.usage_bytes == 0


@pytest.mark.parametrize(("arguments", "field"), [
    ({"max_entries": 0}, "max_entries"), ({"max_entries": 2.5}, "max_entries"),
    ({"max_memory_mb": 0}, "max_memory_mb"), ({"max_memory_mb": "50"}, "max_memory_mb"),
    ({"ttl_seconds": -1}, "ttl_seconds"), ({"ttl_seconds": float("nan")}, "ttl_seconds"),
    ({"name": ""}, "name"), ({"sizer": "huge"}, "sizer"), ({"timer": 3}, "timer"),
])
def test_bad_configuration_names_the_field(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        SmartCache(**arguments)


def test_bad_sizer_result_is_a_clear_error() -> None:
    cache = make(sizer=lambda value: -1)
    with pytest.raises(TypeError, match="expected an int >= 0"):
        cache.insert("k", "v")
    failing = make(sizer=len)
    with pytest.raises(TypeError, match="failed on a value of type int"):
        failing.insert("k", 42)


def test_mapping_protocol() -> None:
    cache = make()
    cache["a"] = 1
    cache["b"] = 2
    assert cache["a"] == 1 and "a" in cache and "z" not in cache and len(cache) == 2
    with pytest.raises(KeyError, match="no entry for this str key in cache 'smart_cache'") as raised:
        cache["token-abc"]
    assert "token-abc" not in str(raised.value)
    del cache["a"]
    with pytest.raises(KeyError):
        del cache["a"]
    assert cache.pop("b") == 2 and cache.pop("b", None) is None
    with pytest.raises(KeyError):
        cache.pop("b")
    cache.update({"x": 1, "y": 2})
    assert dict(cache.items()) == {"x": 1, "y": 2}
    cache.clear()
    assert len(cache) == 0 and cache.usage_bytes == 0
    assert cache.cache_stats().evictions["explicit"] == 4
    assert "x" not in repr(cache).replace("max", "") and "smart_cache" in repr(cache)


def test_cache_is_hashable_and_weakly_referenceable() -> None:
    cache = make()
    other = make()
    assert cache != other and len({cache, other}) == 2
    ref = weakref.ref(cache)
    del cache
    gc.collect()
    assert ref() is None


def test_get_or_load_loads_once_for_concurrent_misses(meter_provider: MeterProvider,
                                                      reader: InMemoryMetricReader) -> None:
    cache: SmartCache[str, str] = SmartCache(None, 10, 1, None, name="loads",
                                             meter_provider=meter_provider)
    release = threading.Event()
    calls: list[str] = []

    def loader(key: str) -> str:
        calls.append(key)
        release.wait(5)
        return key.upper()

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load("k", loader)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    while cache.misses < 8:
        threading.Event().wait(0.001)
    release.set()
    for thread in threads:
        thread.join(5)
    assert calls == ["k"] and results == ["K"] * 8
    assert cache.get_or_load("k", loader) == "K" and calls == ["k"]
    stats = cache.cache_stats()
    assert (stats.hits, stats.misses, stats.loads["success"]) == (1, 8, 1)
    durations = points(collect(reader), c.MEMORY_CACHE_LOAD_DURATION.name)
    assert durations == [(1, {c.ATTR_CACHE_NAME: "loads"})]


def test_get_or_load_failure_reaches_every_waiter_and_is_counted() -> None:
    cache = make()
    release = threading.Event()

    def loader(key: str) -> str:
        release.wait(5)
        raise LookupError(key)

    errors: list[BaseException] = []

    def call() -> None:
        try:
            cache.get_or_load("k", loader)
        except LookupError as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    while cache.misses < 4:
        threading.Event().wait(0.001)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(errors) == 4 and "k" not in cache
    assert cache.cache_stats().loads == {"success": 0, "failure": 1}
    assert cache.get_or_load("k", str.upper) == "K"      # a later call loads again


def test_a_loader_asking_for_its_own_key_fails_clearly_instead_of_hanging() -> None:
    cache = make()

    def loader(key: str) -> str:                 # e.g. a memoized function calling itself
        return cache.get_or_load(key, loader)

    outcome: list[BaseException] = []

    def call() -> None:
        try:
            cache.get_or_load("k", loader)
        except RuntimeError as error:
            outcome.append(error)

    thread = threading.Thread(target=call, daemon=True)   # before the fix it never ends
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and len(outcome) == 1
    assert "asked for that same key again" in str(outcome[0])
    assert cache.get_or_load("k", str.upper) == "K"      # nothing is left in flight


def test_get_or_load_returns_values_the_cache_refuses() -> None:
    cache = make(max_memory_mb=0.01)
    huge = "x" * 50000
    assert cache.get_or_load("k", lambda key: huge) is huge
    assert "k" not in cache
    cache.respond_to_pressure(MemoryPressure.CRITICAL)
    assert cache.get_or_load("j", str.upper) == "J" and "j" not in cache
    with pytest.raises(CacheRefused, match="Critical"):
        cache.insert("j", "J")


def test_eight_threads_of_mixed_operations_reconcile() -> None:
    clock = FakeClock()
    cache: SmartCache[str, Any] = SmartCache(None, 300, 0.1, 0.05, name="threads", timer=clock,
                                             meter_provider=MeterProvider())
    inserts = [0] * 8
    lookups = [0] * 8
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for step in range(3000):
                clock.advance(0.0005)   # racy on purpose: the cache must not care if time steps back
                action = rng.random()
                if action < 0.4:
                    cache.insert(f"{worker}:{step}", "v" * rng.randint(0, 600))
                    inserts[worker] += 1
                elif action < 0.8:
                    cache.get(f"{rng.randint(0, 7)}:{rng.randint(max(0, step - 200), step)}")
                    lookups[worker] += 1
                elif action < 0.9:
                    cache.get_or_load(f"shared:{rng.randint(0, 40)}", lambda key: key * 20)
                    lookups[worker] += 1
                elif action < 0.95:
                    cache.pop(f"{worker}:{rng.randint(max(0, step - 50), step)}", None)
                else:
                    len(cache)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    stats = cache.cache_stats()
    assert stats.hits + stats.misses == sum(lookups)
    assert stats.hits > 0 and stats.misses > 0 and stats.loads["success"] > 0
    # Each insert and each load added an absent key: it is still there or was removed once.
    removed = sum(stats.evictions.values())
    assert sum(inserts) + stats.loads["success"] == stats.entries + removed
    assert stats.entries <= 300 and stats.usage_bytes <= cache.max_bytes
    live = dict(cache._data)
    assert stats.usage_bytes == sum(entry[1] for entry in live.values())
    assert stats.usage_bytes == sum(cache.entry_size(key, entry[0]) for key, entry in live.items())
    assert sum(stats.evicted_bytes.values()) > 0 and stats.evictions["expired"] > 0


def _reference_entry(rng: random.Random, i: int) -> tuple[str, Any]:
    key = f"user:{i}:{rng.random()}"
    kind = i % 4
    if kind == 0:
        return key, "text " * rng.randint(4, 400) + str(i)
    if kind == 1:
        return key, bytes(rng.randint(20, 4000))
    if kind == 2:                       # an API response, decoded: fresh key strings per record
        return key, json.loads(json.dumps({
            "id": i, "name": f"user {i}", "email": f"u{i}@example.com", "score": rng.random(),
            "tags": [f"tag-{j}" for j in range(rng.randint(0, 8))]}))
    return key, [f"item-{i}-{j}" for j in range(rng.randint(1, 30))]


@pytest.mark.parametrize("ttl", [None, 300.0])
@pytest.mark.parametrize("sizer", [None, "deep"])
def test_reported_bytes_are_within_15_percent_of_tracemalloc(ttl: float | None, sizer: str | None) -> None:
    cache: SmartCache[str, Any] = SmartCache(None, 100_000, 500, ttl, name="accounting",
                                             sizer=sizer, meter_provider=MeterProvider())
    rng = random.Random(7)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(3000):
            key, value = _reference_entry(rng, i)
            cache.insert(key, value)
        del key, value
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    reported = cache.usage_bytes
    assert len(cache) == 3000 and traced > 3 * MB
    assert abs(reported - traced) <= 0.15 * traced, (reported, traced)


def test_the_accounting_test_tells_a_value_only_getsizeof_apart() -> None:
    """What cachetools-style sizing (sys.getsizeof of the value) reports for the same workload."""
    rng = random.Random(7)
    entries = [_reference_entry(rng, i) for i in range(3000)]
    naive = sum(sys.getsizeof(value) for _, value in entries)
    cache: SmartCache[str, Any] = SmartCache(None, 100_000, 500, None, name="naive",
                                             meter_provider=MeterProvider())
    for key, value in entries:
        cache.insert(key, value)
    assert naive < 0.8 * cache.usage_bytes


def test_forked_child_keeps_entries_and_counts_from_zero() -> None:
    import os

    cache = make()
    cache.insert("a", 1)
    cache.get("a")
    held = threading.Event()
    holder = threading.Thread(target=lambda: cache._lock.acquire() and held.set())  # keeps it held
    holder.start()                      # another thread holds the lock while we fork
    assert held.wait(10)                # (under load, not just probably: surely held)
    pid = os.fork()
    if pid == 0:                        # pragma: no cover - runs in the child
        ok = False
        try:
            ok = cache.hits == 0 and cache.get("a") == 1 and cache.hits == 1
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    holder.join()
    cache._lock.release()
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.hits == 1


@pytest.mark.parametrize("change", ["set", "delete", "clear"])
def test_a_value_loaded_before_the_key_changed_is_not_cached_over_the_change(change: str) -> None:
    cache = make()
    loading, release = threading.Event(), threading.Event()
    returned: list[Any] = []

    def slow_load(key: str) -> str:
        loading.set()
        release.wait(10)
        return "read before the change"

    loader = threading.Thread(target=lambda: returned.append(cache.get_or_load("user", slow_load)))
    loader.start()
    assert loading.wait(10)
    if change == "set":
        cache["user"] = "new"
    elif change == "delete":
        cache["user"] = "new"
        del cache["user"]
    else:
        cache.clear()
    release.set()
    loader.join(10)
    assert returned == ["read before the change"], "its caller still gets what it loaded"
    assert cache.get("user") == ("new" if change == "set" else None)


class TickingClock(FakeClock):
    """Each reading ``step`` later than the one before: a busy server's clock."""

    step = 0.0

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now


@pytest.mark.parametrize("view", ["items", "values"])
def test_items_and_values_are_a_snapshot_that_entries_expiring_meanwhile_cannot_break(
        view: str) -> None:
    clock = TickingClock()
    cache = make(ttl=10.0, clock=clock)
    cache["a"], cache["b"] = 1, 2          # they expire at 1010.0
    clock.now, clock.step = 1009.99, 0.01  # and do so while they are read one by one
    entries = dict(cache.items()) if view == "items" else dict(zip("ab", cache.values(), strict=True))
    assert entries == {"a": 1, "b": 2}
    assert cache.cache_stats().hits == 0, "reading a snapshot is not a request"


@pytest.mark.parametrize("fraction", [-0.1, 5.0, float("nan"), "half"])
def test_a_pressure_policy_giving_no_share_of_the_budget_is_refused_by_name(fraction: Any) -> None:
    class Odd:
        def budget_fraction(self, level: MemoryPressure) -> Any:
            return fraction

        def refuses_inserts(self, level: MemoryPressure) -> bool:
            return False

    cache = make(pressure_policy=Odd())
    cache["a"] = b"1"
    with pytest.raises(ConfigError, match=r"pressure_policy.budget_fraction\(HIGH\) returned .*; "
                                          r"expected a share of the budget from 0 to 1"):
        cache.respond_to_pressure(MemoryPressure.HIGH)
    assert cache.get("a") == b"1" and cache.budget_bytes == cache.max_bytes, "nothing changed"
