"""Caches: requests by result, entries and bytes against their budgets, evictions, loads.

Example::

    from otel_memory.catalog import MEMORY_CACHE_USAGE
"""

from __future__ import annotations

from ._spec import WAIT_BUCKETS_S, Group, Instrument, MetricSpec
from .attributes import ATTR_CACHE_EVICTION_REASON, ATTR_CACHE_LOAD_RESULT, ATTR_CACHE_NAME, ATTR_CACHE_RESULT

# --- caches -----------------------------------------------------------------------------

MEMORY_CACHE_REQUESTS = MetricSpec(
    "memory.cache.requests", Instrument.OBSERVABLE_COUNTER, "{request}",
    "Cache lookups, by result (hit, miss).", Group.CACHE, (ATTR_CACHE_NAME, ATTR_CACHE_RESULT),
    meaning="SmartCache get/[]/get_or_load calls (an expired entry is a miss); cache_info() of an "
    "instrumented functools.lru_cache or cachetools.cached(..., info=True) function. Plain "
    "cachetools caches do not count lookups, so they have no points here.",
)
MEMORY_CACHE_ENTRIES = MetricSpec(
    "memory.cache.entries", Instrument.OBSERVABLE_GAUGE, "{entry}",
    "Entries in the cache.", Group.CACHE, (ATTR_CACHE_NAME,),
)
MEMORY_CACHE_ENTRIES_LIMIT = MetricSpec(
    "memory.cache.entries.limit", Instrument.OBSERVABLE_GAUGE, "{entry}",
    "The most entries the cache may hold.", Group.CACHE, (ATTR_CACHE_NAME,),
)
MEMORY_CACHE_USAGE = MetricSpec(
    "memory.cache.usage", Instrument.OBSERVABLE_GAUGE, "By",
    "Memory the cache's entries take: keys, values and per-entry overhead.", Group.CACHE,
    (ATTR_CACHE_NAME,),
    meaning="SmartCache: each entry's key and value sized two levels deep (or by the configured "
    "sizer) plus the cache's own bookkeeping per entry; within 15% of tracemalloc for typical "
    "values. A cachetools cache with a getsizeof: its currsize.",
)
MEMORY_CACHE_USAGE_LIMIT = MetricSpec(
    "memory.cache.usage.limit", Instrument.OBSERVABLE_GAUGE, "By",
    "The memory budget of the cache (lowered while under pressure).", Group.CACHE,
    (ATTR_CACHE_NAME,),
    meaning="max_memory_mb, times the pressure policy's share at the current level (by default "
    "75% at moderate, 50% at high, 0 at critical).",
)
MEMORY_CACHE_EVICTIONS = MetricSpec(
    "memory.cache.evictions", Instrument.OBSERVABLE_COUNTER, "{entry}",
    "Entries removed by the cache, by reason.", Group.CACHE,
    (ATTR_CACHE_NAME, ATTR_CACHE_EVICTION_REASON),
    meaning="Reasons: size (entry limit), memory (byte budget), expired (TTL), pressure, explicit.",
)
MEMORY_CACHE_EVICTED = MetricSpec(
    "memory.cache.evicted", Instrument.OBSERVABLE_COUNTER, "By",
    "Bytes removed by the cache, by reason.", Group.CACHE,
    (ATTR_CACHE_NAME, ATTR_CACHE_EVICTION_REASON),
)
MEMORY_CACHE_LOADS = MetricSpec(
    "memory.cache.loads", Instrument.OBSERVABLE_COUNTER, "{load}",
    "Loader calls made on a miss, by result (success, failure).", Group.CACHE,
    (ATTR_CACHE_NAME, ATTR_CACHE_LOAD_RESULT),
)
MEMORY_CACHE_LOAD_DURATION = MetricSpec(
    "memory.cache.load.duration", Instrument.HISTOGRAM, "s",
    "Time the loader took on a miss.", Group.CACHE, (ATTR_CACHE_NAME,), buckets=WAIT_BUCKETS_S,
)

SPECS: tuple[MetricSpec, ...] = (
    MEMORY_CACHE_REQUESTS,
    MEMORY_CACHE_ENTRIES,
    MEMORY_CACHE_ENTRIES_LIMIT,
    MEMORY_CACHE_USAGE,
    MEMORY_CACHE_USAGE_LIMIT,
    MEMORY_CACHE_EVICTIONS,
    MEMORY_CACHE_EVICTED,
    MEMORY_CACHE_LOADS,
    MEMORY_CACHE_LOAD_DURATION,
)
