"""Memory-aware caching: a SmartCache that counts its bytes, reports itself and yields under pressure.

What it shows, printed step by step:
1. a SmartCache with the original design's arguments, filled by a skewed workload: hit ratio,
   entries and honestly counted bytes, as the memory.cache.* metrics report them;
2. a functools.lru_cache and a smart_cached function reported through the same metrics;
3. a MemoryManager whose thresholds sit just above this process's memory; ballast pushes the
   process's RSS through MODERATE, HIGH and CRITICAL: the cache shrinks to 75% and 50% of its budget,
   is cleared and refuses inserts, then gets its whole budget back when the ballast is freed.

Run::

    .venv/bin/python examples/memory_aware_caching.py
"""

from __future__ import annotations

import functools
import random
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import CacheRefused, MemoryLimitConfig, MemoryManagementConfig, MemoryManager
from otel_memory import catalog as c
from otel_memory.cache import SmartCache, instrument_lru_cache, smart_cached
from otel_memory.config import MB

CACHE_METRICS = frozenset(spec.name for spec in c.in_group(c.Group.CACHE))
CACHE_PREFIX = c.MEMORY_CACHE_REQUESTS.name.rsplit(".", 1)[0] + "."     # "memory.cache."


def cache_metrics(reader: InMemoryMetricReader) -> dict[str, dict[str, float]]:
    """{cache name: {metric (and attribute): value}} from one collection."""
    table: dict[str, dict[str, float]] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name not in CACHE_METRICS:
                    continue
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    name = str(attributes.pop(c.ATTR_CACHE_NAME))
                    label = metric.name.removeprefix(CACHE_PREFIX)
                    if attributes:
                        label += "{" + ",".join(str(v) for v in attributes.values()) + "}"
                    table.setdefault(name, {})[label] = getattr(point, "value", None) or getattr(
                        point, "count", 0)
    return table


def show(reader: InMemoryMetricReader, name: str, *labels: str) -> None:
    row = cache_metrics(reader).get(name, {})
    print("   ", ", ".join(f"{label}={row.get(label, 0):.0f}" for label in labels))


def current_rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def main() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    rss = current_rss()
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(
            max_heap_mb=(rss + 400 * MB) / MB, warning_threshold_mb=(rss + 60 * MB) / MB,
            gc_pressure_threshold_mb=(rss + 120 * MB) / MB, critical_threshold_mb=(rss + 180 * MB) / MB,
            hysteresis_mb=5, monitoring_interval_ms=60_000),
        enable_leak_detection=False)
    with MemoryManager(config, meter_provider=provider) as manager:
        print("1. SmartCache(manager, 1000, 50, 300): a skewed workload of 20000 lookups")
        cache: SmartCache[int, Any] = SmartCache(manager, 1000, 50, 300, name="profiles")
        rng = random.Random(42)
        for _ in range(20_000):
            key = int(rng.paretovariate(0.6)) % 3000
            if cache.get(key) is None:
                cache.insert(key, {"id": key, "name": f"user {key}", "bio": "x" * (200 + key % 3000)})
        stats = cache.cache_stats()
        print(f"   hit ratio {stats.hits / (stats.hits + stats.misses):.2f}, {stats.entries} entries, "
              f"{stats.usage_bytes / MB:.2f} MB counted (keys, values and per-entry overhead)")
        show(reader, "profiles", "requests{hit}", "requests{miss}", "entries", "usage",
             "evictions{size}")

        print("2. existing caches through the same metrics")

        @functools.lru_cache(maxsize=128)
        def slug(title: str) -> str:
            return title.lower().replace(" ", "-")

        instrument_lru_cache(slug, name="slugs", memory_manager=manager)

        @smart_cached(manager, max_entries=100, max_memory_mb=1, ttl_seconds=60)
        def render(page: int) -> str:
            return f"<h1>page {page}</h1>" * 50

        for page in (1, 2, 1, 1, 3):
            slug(f"Page Title {page}")
            render(page)
        show(reader, "slugs", "requests{hit}", "requests{miss}", "entries", "entries.limit")
        show(reader, render.cache.name, "requests{hit}", "requests{miss}", "loads{success}",
             "load.duration")

        print("3. memory pressure from ballast (thresholds +60/+120/+180 MB above the start)")
        for key in range(1000):                       # fill the cache: 1000 entries, ~44 MB
            cache.insert(key, "y" * 45_000)
        ballast: list[bytes] = []
        for above, expected in ((90, "Moderate"), (150, "High"), (210, "Critical"), (0, "Low")):
            ballast.clear()
            missing = rss + above * MB - current_rss()      # the cache itself holds memory too
            if above and missing > 0:
                ballast.append(b"\x01" * missing)
            level = manager.check_pressure()
            print(f"   RSS +{(current_rss() - rss) / MB:3.0f} MB -> {level.title:8} (expected {expected:8}): "
                  f"cache {len(cache):4d} entries, {cache.usage_bytes / MB:5.2f} MB of a "
                  f"{cache.budget_bytes / MB:5.2f} MB budget; lru_cache {slug.cache_info().currsize} entries")
            if cache.refusing:
                try:
                    cache.insert(-1, "refused")
                except CacheRefused as error:
                    print(f"   insert refused: {error}")
        cache.insert(-1, "accepted again")
        print(f"   after pressure fell an insert is accepted again: {len(cache)} entry")
        show(reader, "profiles", "usage.limit", "evictions{pressure}", "evicted{pressure}")
        print(f"   pressure actions counted by the manager: {manager.actions}")
    provider.shutdown()


if __name__ == "__main__":
    main()
