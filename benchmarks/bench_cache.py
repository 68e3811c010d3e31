"""SmartCache against cachetools.TTLCache, side by side in one run, with metrics enabled.

Measures, per operation, the best of several interleaved rounds:
- hit: ``SmartCache.get`` of present keys vs ``TTLCache.get`` of present keys;
- evicting insert: a new key into a full cache, each insert evicting by memory, vs
  ``TTLCache(getsizeof=sys.getsizeof)`` whose maxsize is a byte budget;
- for reference, ``functools.lru_cache`` hit, ``SmartCache.get_or_load`` hit, and evicting
  inserts of a small dict record (sized two levels deep by SmartCache, shallowly by getsizeof).
The SmartCache reports through an SDK MeterProvider with a reader attached (collected once per
round, outside the timing). Goal: ratio <= 1.0 for hit and evicting insert.

Run::

    .venv/bin/python benchmarks/bench_cache.py [--rounds 7] [--ops 20000]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable

import cachetools
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory.cache import SmartCache

ENTRIES = 1000
VALUE = b"v" * 200
RECORD = {"id": 12345, "name": "user 12345", "email": "u12345@example.com", "tags": ["a", "bb", "ccc"]}


def best_ns(run: Callable[[], None], ops: int, rounds: list[float]) -> None:
    start = time.perf_counter()
    run()
    rounds.append((time.perf_counter() - start) / ops * 1e9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=20000)
    args = parser.parse_args()
    ops = args.ops

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    keys = [f"key:{i}" for i in range(ENTRIES)]
    hit_keys = (keys * (ops // ENTRIES + 1))[:ops]

    smart: SmartCache[str, bytes] = SmartCache(None, 10 * ENTRIES, 50, 300, name="bench",
                                               meter_provider=provider)
    ttl = cachetools.TTLCache(maxsize=10 * ENTRIES, ttl=300)
    for key in keys:
        smart.insert(key, VALUE)
        ttl[key] = VALUE

    def smart_hits() -> None:
        get = smart.get
        for key in hit_keys:
            get(key)

    def ttl_hits() -> None:
        get = ttl.get
        for key in hit_keys:
            get(key)

    def smart_loader_hits() -> None:
        get_or_load = smart.get_or_load
        for key in hit_keys:
            get_or_load(key, bytes)

    @functools.lru_cache(maxsize=10 * ENTRIES)
    def lru(key: str) -> bytes:
        return VALUE

    for key in keys:
        lru(key)

    def lru_hits() -> None:
        for key in hit_keys:
            lru(key)

    # Evicting inserts: budgets that hold about ENTRIES entries, so every insert evicts one.
    entry_bytes = smart.entry_size("key:0000000", VALUE)
    budget_mb = ENTRIES * entry_bytes / (1024 * 1024)
    counter = [0]

    def fresh_keys() -> list[str]:
        counter[0] += 1
        return [f"new:{counter[0]}:{i}" for i in range(ops)]

    evicting_smart: SmartCache[str, bytes] = SmartCache(
        None, 100 * ENTRIES, budget_mb, 300, name="bench_evict", meter_provider=provider)
    evicting_ttl = cachetools.TTLCache(maxsize=ENTRIES * (sys.getsizeof(VALUE) + 60), ttl=300,
                                       getsizeof=sys.getsizeof)
    for key in fresh_keys()[: 2 * ENTRIES]:
        evicting_smart.insert(key, VALUE)
        evicting_ttl[key] = VALUE

    def smart_inserts(new: list[str]) -> None:
        insert = evicting_smart.insert
        for key in new:
            insert(key, VALUE)

    def ttl_inserts(new: list[str]) -> None:
        for key in new:
            evicting_ttl[key] = VALUE

    # The same with a small dict record: SmartCache sizes it two levels deep, getsizeof shallowly.
    record_bytes = smart.entry_size("key:0000000", RECORD)
    record_smart: SmartCache[str, object] = SmartCache(
        None, 100 * ENTRIES, ENTRIES * record_bytes / (1024 * 1024), 300, name="bench_record",
        meter_provider=provider)
    record_ttl = cachetools.TTLCache(maxsize=ENTRIES * (sys.getsizeof(RECORD) + 60), ttl=300,
                                     getsizeof=sys.getsizeof)
    for key in fresh_keys()[: 2 * ENTRIES]:
        record_smart.insert(key, RECORD)
        record_ttl[key] = RECORD

    def smart_record_inserts(new: list[str]) -> None:
        insert = record_smart.insert
        for key in new:
            insert(key, RECORD)

    def ttl_record_inserts(new: list[str]) -> None:
        for key in new:
            record_ttl[key] = RECORD

    results: dict[str, list[float]] = {name: [] for name in (
        "smart_hit", "ttl_hit", "smart_get_or_load_hit", "lru_cache_hit", "smart_insert", "ttl_insert",
        "smart_insert_record", "ttl_insert_record")}
    for _ in range(args.rounds):
        best_ns(smart_hits, ops, results["smart_hit"])
        best_ns(ttl_hits, ops, results["ttl_hit"])
        best_ns(smart_loader_hits, ops, results["smart_get_or_load_hit"])
        best_ns(lru_hits, ops, results["lru_cache_hit"])
        best_ns(functools.partial(smart_inserts, fresh_keys()), ops, results["smart_insert"])
        best_ns(functools.partial(ttl_inserts, fresh_keys()), ops, results["ttl_insert"])
        best_ns(functools.partial(smart_record_inserts, fresh_keys()), ops, results["smart_insert_record"])
        best_ns(functools.partial(ttl_record_inserts, fresh_keys()), ops, results["ttl_insert_record"])
        reader.get_metrics_data()

    best = {name: min(values) for name, values in results.items()}
    stats = evicting_smart.cache_stats()
    assert stats.evictions["memory"] > 0, "the evicting benchmark did not evict"
    print(f"per operation, best of {args.rounds} rounds of {ops} ops (ns):")
    for name, value in best.items():
        print(f"  {name:24} {value:8.0f}")
    print(f"ratio hit      SmartCache.get / TTLCache.get           = "
          f"{best['smart_hit'] / best['ttl_hit']:.2f}  (goal <= 1.0)")
    print(f"ratio insert   SmartCache.insert / TTLCache[k]=v evict = "
          f"{best['smart_insert'] / best['ttl_insert']:.2f}  (goal <= 1.0)")
    print(f"ratio record   the same with a dict record value          = "
          f"{best['smart_insert_record'] / best['ttl_insert_record']:.2f}  (for information: "
          "SmartCache counts the record's keys and values, getsizeof only the dict)")
    provider.shutdown()


if __name__ == "__main__":
    main()
