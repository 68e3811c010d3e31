"""The pools, caches and leaks dashboards, one series per pool or cache and instance.

Example::

    panels = pool_panels(PromQL(prefix=""))
"""

from __future__ import annotations

from grafanalib import core

from .. import catalog as c
from .panels import PRESSURE_MAPPINGS, Layout, Query, legend, stat, target, timeseries
from .promql import PromQL, label

_INSTANCE = "instance"
_POOL = label(c.ATTR_POOL_NAME)
_DB_POOL = label(c.ATTR_DB_POOL_NAME)
_CACHE = label(c.ATTR_CACHE_NAME)
_LEAK_KIND = label(c.ATTR_LEAK_KIND)
_ALERT_REASON = label(c.ATTR_LEAK_ALERT_REASON)
_GROWTH_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "normal", "color": "green", "index": 0},
    "1": {"text": "growing", "color": "red", "index": 1},
}}]


def _by(*labels: str) -> str:
    return ", ".join((_INSTANCE, *labels))


def pool_panels(q: PromQL) -> list[core.Panel]:
    """Object pools and database connection pools."""
    layout = Layout()
    _object_pools(layout, q)
    _db_pools(layout, q)
    return layout.panels


def _gauge(q: PromQL, spec: c.MetricSpec, text: str, *labels: str) -> Query:
    return target(f"max by ({_by(*labels)}) ({q.select(spec)})", legend(*labels, text=text))


def _rate(q: PromQL, spec: c.MetricSpec, text: str, *labels: str, **where: str) -> Query:
    return target(f"sum by ({_by(*labels)}) ({q.rate(spec, **where)})", legend(*labels, text=text))


def _quantiles(q: PromQL, spec: c.MetricSpec, *labels: str) -> list[Query]:
    return [target(q.quantile(quantile, spec, (_INSTANCE, *labels)), legend(*labels, text=name))
            for quantile, name in ((0.5, "p50"), (0.99, "p99"))]


def _object_pools(layout: Layout, q: PromQL) -> None:
    reason = label(c.ATTR_POOL_DESTROY_REASON)
    layout.row("Object pools")
    layout.add(
        timeseries("Objects by state", "Objects each pool holds (size), lent out (borrowed) and "
                   "waiting to be borrowed (idle), against the most it may hold (max).", "short", [
                       _gauge(q, c.MEMORY_POOL_SIZE, "size", _POOL),
                       _gauge(q, c.MEMORY_POOL_BORROWED, "borrowed", _POOL),
                       _gauge(q, c.MEMORY_POOL_IDLE, "idle", _POOL),
                       _gauge(q, c.MEMORY_POOL_MAX, "max", _POOL),
                   ]),
        timeseries("Pool utilization", "Borrowed objects as a share of the pool's maximum size; at "
                   "100% new borrowers wait.", "percentunit", [target(
                       f"max by ({_by(_POOL)}) ({q.select(c.MEMORY_POOL_BORROWED)}) / "
                       f"max by ({_by(_POOL)}) ({q.select(c.MEMORY_POOL_MAX)})", legend(_POOL))],
                   min_value=0, max_value=1),
        timeseries("Pending borrowers", "Borrowers waiting for an object right now.", "short",
                   [_gauge(q, c.MEMORY_POOL_PENDING_REQUESTS, "", _POOL)], width=8),
        timeseries("Borrows", "Objects lent out per second.", "ops",
                   [_rate(q, c.MEMORY_POOL_BORROWS, "", _POOL)], width=8),
        timeseries("Timeouts and rejections", "Borrows per second that gave up after the timeout, and "
                   "borrows refused at once because max_waiting borrowers already waited.", "ops", [
                       _rate(q, c.MEMORY_POOL_TIMEOUTS, "timeouts", _POOL),
                       _rate(q, c.MEMORY_POOL_REJECTIONS, "rejections", _POOL),
                   ], width=8),
        timeseries("Wait time", "Median and 99th percentile of the time a borrow waited for an object "
                   "(only borrows that had to wait).", "s", _quantiles(q, c.MEMORY_POOL_WAIT_TIME, _POOL)),
        timeseries("Create and use time", "99th percentile of the time the factory took to create an "
                   "object, and of the time borrowers held one (when use timing is enabled).", "s", [
                       target(q.quantile(0.99, c.MEMORY_POOL_CREATE_TIME, (_INSTANCE, _POOL)),
                              legend(_POOL, text="create p99")),
                       target(q.quantile(0.99, c.MEMORY_POOL_USE_TIME, (_INSTANCE, _POOL)),
                              legend(_POOL, text="use p99")),
                   ]),
        timeseries("Created and destroyed", "Objects created per second, factory errors per second, and "
                   "objects destroyed per second by reason (health_check, max_lifetime, idle_timeout, "
                   "pressure, discarded, closed).", "ops", [
                       _rate(q, c.MEMORY_POOL_CREATED, "created", _POOL),
                       _rate(q, c.MEMORY_POOL_CREATE_ERRORS, "create errors", _POOL),
                       _rate(q, c.MEMORY_POOL_DESTROYED, "destroyed", _POOL, reason),
                   ]),
        timeseries("Leaked borrows", "Borrowed objects never returned (reclaimed by the garbage "
                   "collector) per rate interval. Any is a bug in the borrowing code.", "short",
                   [target(f"sum by ({_by(_POOL)}) "
                           f"({q.increase(c.MEMORY_POOL_LEAKED_BORROWS, q.rate_window)})", legend(_POOL))]),
    )


def _db_pools(layout: Layout, q: PromQL) -> None:
    state = label(c.ATTR_DB_STATE)
    layout.row("Database connection pools")
    layout.add(
        timeseries("Connections by state", "Open connections by state (idle, used) against the "
                   "pool's limits.", "short", [
                       _gauge(q, c.DB_CLIENT_CONNECTION_COUNT, "", _DB_POOL, state),
                       _gauge(q, c.DB_CLIENT_CONNECTION_MAX, "max", _DB_POOL),
                       _gauge(q, c.DB_CLIENT_CONNECTION_IDLE_MAX, "idle max", _DB_POOL),
                       _gauge(q, c.DB_CLIENT_CONNECTION_IDLE_MIN, "idle min", _DB_POOL),
                   ]),
        timeseries("Pending connection requests", "Requests waiting for an open connection right now.",
                   "short", [_gauge(q, c.DB_CLIENT_CONNECTION_PENDING_REQUESTS, "", _DB_POOL)]),
        timeseries("Connection timeouts", "Requests per second that timed out waiting for a connection.",
                   "ops", [_rate(q, c.DB_CLIENT_CONNECTION_TIMEOUTS, "", _DB_POOL)], width=8),
        timeseries("Connection wait time", "Median and 99th percentile of the time it took to obtain "
                   "an open connection from the pool.", "s",
                   _quantiles(q, c.DB_CLIENT_CONNECTION_WAIT_TIME, _DB_POOL), width=8),
        timeseries("Connection create and use time", "99th percentile of the time it took to create a "
                   "connection and of the time between borrowing one and returning it.", "s", [
                       target(q.quantile(0.99, c.DB_CLIENT_CONNECTION_CREATE_TIME, (_INSTANCE, _DB_POOL)),
                              legend(_DB_POOL, text="create p99")),
                       target(q.quantile(0.99, c.DB_CLIENT_CONNECTION_USE_TIME, (_INSTANCE, _DB_POOL)),
                              legend(_DB_POOL, text="use p99")),
                   ], width=8),
    )


def cache_panels(q: PromQL) -> list[core.Panel]:
    """Hit ratio, entries, bytes against the budget, evictions and loads per cache."""
    result = label(c.ATTR_CACHE_RESULT)
    reason = label(c.ATTR_CACHE_EVICTION_REASON)
    load_result = label(c.ATTR_CACHE_LOAD_RESULT)
    hits = q.rate(c.MEMORY_CACHE_REQUESTS, **{result: "hit"})
    ratio = f"sum by ({_by(_CACHE)}) ({hits}) / sum by ({_by(_CACHE)}) ({q.rate(c.MEMORY_CACHE_REQUESTS)})"
    layout = Layout()
    layout.row("Caches")
    layout.add(
        timeseries("Hit ratio", "Share of lookups answered from the cache, per cache.", "percentunit",
                   [target(ratio, legend(_CACHE))], min_value=0, max_value=1),
        timeseries("Pressure level", "Memory pressure level beside the hit ratio: caches shrink under "
                   "pressure, so the hit ratio falls while pressure is HIGH or CRITICAL.", "none",
                   [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_PRESSURE_LEVEL)})", legend())],
                   mappings=PRESSURE_MAPPINGS, line_interpolation="stepAfter", min_value=0, max_value=3),
        timeseries("Lookups", "Cache lookups per second, by result (hit, miss).", "ops",
                   [_rate(q, c.MEMORY_CACHE_REQUESTS, "", _CACHE, result)], width=8),
        timeseries("Entries", "Entries in each cache against the most it may hold.", "short", [
                       _gauge(q, c.MEMORY_CACHE_ENTRIES, "entries", _CACHE),
                       _gauge(q, c.MEMORY_CACHE_ENTRIES_LIMIT, "limit", _CACHE),
                   ], width=8),
        timeseries("Memory against the budget", "Bytes the entries take (keys, values, overhead) "
                   "against the cache's memory budget, which is lowered under pressure.", "bytes", [
                       _gauge(q, c.MEMORY_CACHE_USAGE, "usage", _CACHE),
                       _gauge(q, c.MEMORY_CACHE_USAGE_LIMIT, "budget", _CACHE),
                   ], width=8),
        timeseries("Evictions", "Entries removed per second by reason: size (entry limit), memory "
                   "(byte budget), expired (TTL), pressure, explicit.", "ops",
                   [_rate(q, c.MEMORY_CACHE_EVICTIONS, "", _CACHE, reason)]),
        timeseries("Bytes evicted", "Bytes removed per second, by reason.", "Bps",
                   [_rate(q, c.MEMORY_CACHE_EVICTED, "", _CACHE, reason)]),
        timeseries("Loads", "Loader calls made on a miss per second, by result (success, failure).",
                   "ops", [_rate(q, c.MEMORY_CACHE_LOADS, "", _CACHE, load_result)]),
        timeseries("Load time", "Median and 99th percentile of the time the loader took on a miss.", "s",
                   _quantiles(q, c.MEMORY_CACHE_LOAD_DURATION, _CACHE)),
    )
    return layout.panels


def leak_panels(q: PromQL) -> list[core.Panel]:
    """Leak suspects, their growth, and what the detector costs."""
    layout = Layout()
    layout.row("Leak detection")
    layout.add(
        stat("Leak suspects now", "Current leak suspects of every kind: types, containers, "
             "floors under churn and native memory.", "short",
             [target(f"sum by ({_INSTANCE}) ({q.select(c.MEMORY_LEAK_SUSPECTS)})", legend())],
             width=8),
        stat("Growth of the suspects", "Combined growth rate of the current leak suspects.", "Bps",
             [_gauge(q, c.MEMORY_LEAK_GROWTH_RATE, "")], width=8),
        stat("Usage growth", "Growth of usage over the trend window (least-squares slope).", "Bps",
             [_gauge(q, c.MEMORY_TREND_GROWTH_RATE, "")], width=8),
        timeseries("Leak suspects by kind", "Suspects by kind (type: a type's objects; container: "
                   "one dict/list/set; floor: a type's long-lived objects under churn; native: "
                   "memory outside the Python heap), and new suspects per rate interval.", "short", [
                       _gauge(q, c.MEMORY_LEAK_SUSPECTS, "", _LEAK_KIND),
                       target(f"sum by ({_by(_LEAK_KIND)}) "
                              f"({q.increase(c.MEMORY_LEAK_SUSPECTS_DETECTED, q.rate_window)})",
                              legend(_LEAK_KIND, text="new")),
                   ]),
        timeseries("Growth rate", "Growth rate of the leak suspects beside the growth of usage over "
                   "the trend window.", "Bps", [
                       _gauge(q, c.MEMORY_LEAK_GROWTH_RATE, "suspects"),
                       _gauge(q, c.MEMORY_TREND_GROWTH_RATE, "usage"),
                   ]),
        timeseries("Last check duration", "Wall time of the last heap census.", "s",
                   [_gauge(q, c.MEMORY_LEAK_CHECK_DURATION, "")], width=8),
        timeseries("Objects scanned", "Objects the last leak check looked at.", "short",
                   [_gauge(q, c.MEMORY_LEAK_OBJECTS_SCANNED, "")], width=8),
        timeseries("Checks", "Heap censuses taken per second.", "ops",
                   [_rate(q, c.MEMORY_LEAK_CHECKS, "")], width=8),
        timeseries("Uncollectable objects", "Objects the collector could not free, per rate interval: "
                   "growth is a leak the type census also sees.", "short",
                   [target(f"sum by ({_INSTANCE}) "
                           f"({q.increase(c.CPYTHON_GC_UNCOLLECTABLE_OBJECTS, q.rate_window)})", legend())]),
        timeseries("Native memory", "Resident memory the Python heap does not account for (RSS "
                   "minus the census's bytes minus malloc's retained free bytes), beside the freed "
                   "memory malloc keeps for reuse. A native gap that keeps rising is a leak in C; "
                   "retained memory is not.", "bytes", [
                       _gauge(q, c.MEMORY_LEAK_NATIVE_SIZE, "native"),
                       _gauge(q, c.MEMORY_MALLOC_RETAINED, "malloc retained"),
                   ], width=12),
        timeseries("Process growth alert", "1 while usage grew more than leak_detection_threshold_mb "
                   "over the trend window (total) or faster than leak_growth_mb_per_hour over a full "
                   "window (rate), before or without any suspect; else 0.", "none",
                   [_gauge(q, c.MEMORY_LEAK_PROCESS_GROWTH_ALERT, "", _ALERT_REASON)],
                   mappings=_GROWTH_MAPPINGS, line_interpolation="stepAfter", min_value=0,
                   max_value=1, width=12),
    )
    return layout.panels
