"""Cache stress: threads doing get, insert, delete, load and expiry on one SmartCache, with pressure.

While the threads run, a watcher reads the cache's own figures under its lock: bytes and entries
never negative, never over the budget of the moment (pressure lowers it). Afterwards every entry
is measured again: the byte count must equal the sum of the entries' sizes, each size must be
what the sizer says for that key and value, the entry count what the store holds, and the hit
and miss counters what the threads saw.

Example::

    row = cache_stress(SHORT)
    row.figures["max_over_budget"], row.figures["operations"]
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.cache import SmartCache
from otel_memory.cache.store import NEVER
from otel_memory.errors import CacheRefused
from otel_memory.pressure import MemoryPressure
from tests.conftest import collect, points

from .profile import Profile, Row

KEYS = 3_000
MAX_ENTRIES = 1_500
BUDGET_MB = 1.0
_MISSING = object()


def _recount(cache: SmartCache[Any, Any]) -> tuple[int, int, int, int]:
    """(the cache's byte count, the sum of its entries' sizes, entries, entries whose size
    differs from a new measurement), read together under the cache's lock."""
    with cache._lock:
        entries = list(cache._data.items())
        counted = cache.bytes
    total = sum(entry[1] for _key, entry in entries)
    wrong = sum(1 for key, (value, size, expires) in entries
                if cache._entry_size(key, value, expires is not NEVER) != size)
    return counted, total, len(entries), wrong


def cache_stress(profile: Profile) -> Row:
    """``profile.cache_threads`` threads for ``profile.cache_seconds`` on one SmartCache."""
    row = Row("Cache stress: SmartCache", f"{profile.cache_threads} threads x {profile.cache_seconds:g} s")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    cache: SmartCache[int, Any] = SmartCache(None, MAX_ENTRIES, BUDGET_MB, 0.2, name="reliability",
                                             meter_provider=provider)
    stop = threading.Event()
    lock = threading.Lock()
    seen: Counter[str] = Counter()
    failures: list[BaseException] = []
    watch = {"min_bytes": 0, "max_over_budget": 0, "max_over_entries": 0, "readings": 0,
             "recount_mismatches": 0}

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine: Counter[str] = Counter()
        try:
            while not stop.is_set():
                for _ in range(200):
                    key = rng.randrange(KEYS)
                    roll = rng.random()
                    if roll < 0.40:
                        value: Any = cache.get(key, _MISSING)
                        mine["gets"] += 1
                        if value is not _MISSING:
                            mine["hits"] += 1
                            mine["wrong_value"] += value[0] != key
                    elif roll < 0.75:
                        ttl = rng.choice((None, None, 0.001, 0.05, float("inf")))
                        payload = b"x" * rng.randrange(0, 4_000)
                        try:
                            cache.insert(key, (key, payload), ttl_seconds=ttl)
                            mine["inserts"] += 1
                        except CacheRefused:
                            mine["refused"] += 1
                    elif roll < 0.85:
                        mine["deletes"] += cache.pop(key, _MISSING) is not _MISSING
                    elif roll < 0.95:
                        def load(k: int) -> tuple[int, bytes]:
                            mine["loads"] += 1
                            return (k, b"y" * (k % 2_000))

                        value = cache.get_or_load(key, load)
                        mine["get_or_load"] += 1
                        mine["wrong_value"] += value[0] != key
                    elif roll < 0.997:
                        mine["contains"] += key in cache
                        mine["len"] += len(cache) >= 0
                    else:
                        level = rng.choice((MemoryPressure.LOW, MemoryPressure.LOW,
                                            MemoryPressure.MODERATE, MemoryPressure.HIGH,
                                            MemoryPressure.CRITICAL))
                        cache.respond_to_pressure(level)
                        mine["pressure_changes"] += 1
        except BaseException as error:  # noqa: BLE001 - reported in the row
            failures.append(error)
        with lock:
            seen.update(mine)

    def watcher() -> None:
        while not stop.is_set():
            stats = cache.cache_stats()
            watch["readings"] += 1
            watch["min_bytes"] = min(watch["min_bytes"], stats.usage_bytes or 0, stats.entries)
            watch["max_over_budget"] = max(watch["max_over_budget"],
                                           (stats.usage_bytes or 0) - (stats.max_bytes or 0))
            watch["max_over_entries"] = max(watch["max_over_entries"],
                                            stats.entries - (stats.max_entries or 0))
            if watch["readings"] % 20 == 0:
                counted, total, _entries, wrong = _recount(cache)
                watch["recount_mismatches"] += (total != counted) + wrong
            time.sleep(0.001)

    with row.timed():
        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(profile.cache_threads)]
        threads.append(threading.Thread(target=watcher))
        for thread in threads:
            thread.start()
        time.sleep(profile.cache_seconds)
        stop.set()
        for thread in threads:
            thread.join()
        cache.respond_to_pressure(MemoryPressure.LOW)
        time.sleep(0.25)   # past every finite TTL: the figures below cannot change between reads
        stats = cache.cache_stats()
        _counted, total, entries, wrong = _recount(cache)
        got = collect(reader)
    exported = {spec.name: [v for v, a in points(got, spec.name)
                            if a.get(catalog.ATTR_CACHE_NAME) == "reliability"]
                for spec in (catalog.MEMORY_CACHE_USAGE, catalog.MEMORY_CACHE_ENTRIES)}
    requests = {a[catalog.ATTR_CACHE_RESULT]: v for v, a in points(got, catalog.MEMORY_CACHE_REQUESTS.name)
                if a.get(catalog.ATTR_CACHE_NAME) == "reliability"}
    operations = sum(seen[k] for k in ("gets", "inserts", "refused", "get_or_load", "pressure_changes")) + \
        seen["deletes"]
    row.check("no worker failed", failures == [])
    row.check("never a value of another key", seen["wrong_value"] == 0)
    row.check("bytes and entries never negative", watch["min_bytes"] >= 0)
    row.check("byte budget never exceeded", watch["max_over_budget"] <= 0)
    row.check("entry limit never exceeded", watch["max_over_entries"] <= 0)
    row.check("byte count = recount while running", watch["recount_mismatches"] == 0)
    row.check("byte count = recount afterwards (sum of sizes, each size re-measured)",
              stats.usage_bytes == total and wrong == 0)
    row.check("entry count = recount afterwards", stats.entries == entries)
    row.check("exported usage and entries = recount",
              exported == {catalog.MEMORY_CACHE_USAGE.name: [total],
                           catalog.MEMORY_CACHE_ENTRIES.name: [entries]})
    row.check("hits + misses = requests made", (stats.hits or 0) + (stats.misses or 0)
              == seen["gets"] + seen["get_or_load"] == requests.get("hit", 0) + requests.get("miss", 0))
    row.check("hits >= hits seen by get()", (stats.hits or 0) >= seen["hits"])
    row.check("loads counted = loader calls", stats.loads.get("success") == seen["loads"])
    row.figures.update(watch, operations=operations, failures=[repr(e) for e in failures],
                       evictions=dict(stats.evictions), entries=entries, bytes=total, **dict(seen))
    row.count = f"{row.count} ({operations:,} operations)"
    row.result = (f"bytes and entries = recount: {stats.usage_bytes == total and stats.entries == entries}; "
                  f"never negative: {watch['min_bytes'] >= 0}; over budget by at most "
                  f"{max(0, watch['max_over_budget'])} bytes in {watch['readings']:,} readings; "
                  f"evictions {sum(stats.evictions.values()):,} "
                  f"(expired {stats.evictions['expired']:,}, pressure {stats.evictions['pressure']:,})")
    provider.shutdown()
    return row
