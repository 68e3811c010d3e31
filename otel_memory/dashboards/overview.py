"""The memory overview dashboard: usage against the limit, pressure, PSI, trend, GC, response.

Example::

    panels = overview_panels(PromQL(prefix=""))
"""

from __future__ import annotations

from grafanalib import core

from .. import catalog as c
from .panels import PRESSURE_MAPPINGS, TREND_MAPPINGS, Layout, legend, stat, target, timeseries
from .promql import PromQL, label

_INSTANCE = "instance"
_GEN = label(c.ATTR_GC_GENERATION)


def _by(*labels: str) -> str:
    return ", ".join((_INSTANCE, *labels))


def overview_panels(q: PromQL) -> list[core.Panel]:
    """Every panel of the memory overview, laid out in rows."""
    layout = Layout()
    _memory(layout, q)
    _process(layout, q)
    _trend(layout, q)
    _gc(layout, q)
    _response(layout, q)
    return layout.panels


def _memory(layout: Layout, q: PromQL) -> None:
    source = label(c.ATTR_LIMIT_SOURCE)
    kind = label(c.ATTR_THRESHOLD_KIND)
    state = label(c.ATTR_PRESSURE_STATE)
    layout.row("Memory and pressure")
    layout.add(
        stat("Pressure level", "Current memory pressure level per instance: LOW, MODERATE, HIGH or "
             "CRITICAL, from usage against the configured thresholds.", "none",
             [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_PRESSURE_LEVEL)})", legend())],
             mappings=PRESSURE_MAPPINGS),
        stat("Utilization", "Usage as a percentage of the effective limit (the container working set "
             "when the limit is the container's, else RSS).", "percent",
             [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_UTILIZATION)})", legend())],
             decimals=1),
        stat("Resident memory", "Resident set size of each process now.", "bytes",
             [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_ALLOCATED)})", legend())]),
        stat("Effective limit", "The limit pressure is computed against, and where it came from "
             "(config, cgroup_v2, cgroup_v1, rlimit_as, physical).", "bytes",
             [target(f"max by ({_by(source)}) ({q.select(c.MEMORY_LIMIT)})",
                     legend(source))]),
    )
    layout.add(
        timeseries("Resident memory against the limit", "RSS and its high-water mark against the "
                   "effective limit and the thresholds where MODERATE, HIGH and CRITICAL pressure begin.",
                   "bytes", [
                       target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_ALLOCATED)})", legend(text="rss")),
                       target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_PEAK)})", legend(text="peak")),
                       target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_LIMIT)})", legend(text="limit")),
                       target(f"max by ({_by(kind)}) ({q.select(c.MEMORY_THRESHOLD)})",
                              legend(kind, text="threshold")),
                   ]),
        timeseries("Utilization of the effective limit", "Usage as a percentage of the effective "
                   "limit; pressure turns CRITICAL at the critical threshold (87.5% by default).",
                   "percent", [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_UTILIZATION)})",
                                      legend())], min_value=0),
        timeseries("Pressure level over time", "Memory pressure level per instance: 0 LOW, "
                   "1 MODERATE, 2 HIGH, 3 CRITICAL.", "none",
                   [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_PRESSURE_LEVEL)})", legend())],
                   mappings=PRESSURE_MAPPINGS, line_interpolation="stepAfter", min_value=0, max_value=3),
        timeseries("Pressure transitions", "Changes of the pressure level per rate interval, by the "
                   "level entered. Frequent changes mean usage hovers around a threshold.", "short",
                   [target(f"sum by ({_by(state)}) "
                           f"({q.increase(c.MEMORY_PRESSURE_TRANSITIONS, q.rate_window)})",
                           legend(state))]),
    )


def _process(layout: Layout, q: PromQL) -> None:
    scope = label(c.ATTR_PSI_SCOPE)
    fault = label(c.ATTR_PAGING_FAULT_TYPE)
    layout.row("Process and container")
    layout.add(
        timeseries("Process memory", "Resident, virtual and (when enabled) unique set size, and the "
                   "memory tracemalloc traces (enable_tracemalloc).", "bytes", [
                       target(f"max by ({_INSTANCE}) ({q.select(c.PROCESS_MEMORY_USAGE)})",
                              legend(text="resident")),
                       target(f"max by ({_INSTANCE}) ({q.select(c.PROCESS_MEMORY_VIRTUAL)})",
                              legend(text="virtual")),
                       target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_USS)})", legend(text="uss")),
                       target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_TRACEMALLOC_CURRENT)})",
                              legend(text="traced")),
                       target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_TRACEMALLOC_PEAK)})",
                              legend(text="traced peak")),
                   ]),
        timeseries("Container memory", "Memory charged to the cgroup (page cache included) and its "
                   "working set, the figure Kubernetes evicts on. Empty outside a readable cgroup.",
                   "bytes", [
                       target(f"max by ({_INSTANCE}) ({q.select(c.CONTAINER_MEMORY_USAGE)})",
                              legend(text="usage")),
                       target(f"max by ({_INSTANCE}) ({q.select(c.CONTAINER_MEMORY_WORKING_SET)})",
                              legend(text="working set")),
                   ]),
        timeseries("Memory stall (PSI)", "Share of wall time tasks stalled waiting for memory: "
                   "'some' when at least one task waited on reclaim or swap, 'full' when all did.",
                   "percentunit", [target(f"sum by ({_by(scope)}) ({q.rate(c.MEMORY_PSI_STALL)})",
                                          legend(scope))]),
        timeseries("OOM kills in the container", "Processes of the cgroup killed by the OOM killer "
                   "per rate interval: a sibling worker was killed for memory.", "short",
                   [target(f"sum by ({_INSTANCE}) "
                           f"({q.increase(c.MEMORY_CONTAINER_OOM_KILLS, q.rate_window)})", legend())]),
        timeseries("Allocated blocks", "Memory blocks currently allocated by the Python allocator "
                   "(sys.getallocatedblocks()); rises with live objects.", "short",
                   [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_ALLOCATED_BLOCKS)})", legend())]),
        timeseries("Page faults", "Page faults per second by type; major faults read pages back from "
                   "disk or swap, a sign the host is short of memory.", "ops",
                   [target(f"sum by ({_by(fault)}) ({q.rate(c.PROCESS_PAGING_FAULTS)})",
                           legend(fault))]),
    )


def _trend(layout: Layout, q: PromQL) -> None:
    layout.row("Trend")
    layout.add(
        timeseries("Growth rate", "Least-squares slope of usage over the trend window; steady "
                   "positive growth that never falls back is how a leak looks from outside.", "Bps",
                   [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_TREND_GROWTH_RATE)})", legend())],
                   width=8),
        timeseries("Trend direction", "Direction of usage over the trend window: -1 decreasing, "
                   "0 stable, 1 increasing.", "none",
                   [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_TREND_DIRECTION)})", legend())],
                   width=8, mappings=TREND_MAPPINGS, line_interpolation="stepAfter"),
        timeseries("Rolling average usage", "Average usage over the trend window.", "bytes",
                   [target(f"max by ({_INSTANCE}) ({q.select(c.MEMORY_TREND_AVERAGE)})", legend())],
                   width=8),
    )


def _gc(layout: Layout, q: PromQL) -> None:
    layout.row("Garbage collector")
    by_gen = legend(_GEN)
    layout.add(
        timeseries("Collections per second", "Garbage collections per second, per generation.", "ops",
                   [target(f"sum by ({_by(_GEN)}) ({q.rate(c.CPYTHON_GC_COLLECTIONS)})", by_gen)], width=8),
        timeseries("Objects collected per second", "Unreachable objects found in cycles and freed, "
                   "per generation.", "ops",
                   [target(f"sum by ({_by(_GEN)}) ({q.rate(c.CPYTHON_GC_COLLECTED_OBJECTS)})", by_gen)],
                   width=8),
        timeseries("Uncollectable objects", "Objects the collector could not free (kept in gc.garbage) "
                   "per rate interval. Any growth is a leak.", "short",
                   [target(f"sum by ({_by(_GEN)}) "
                           f"({q.increase(c.CPYTHON_GC_UNCOLLECTABLE_OBJECTS, q.rate_window)})", by_gen)],
                   width=8),
        timeseries("Time in GC pauses", "Share of wall time the interpreter spent in collector pauses, "
                   "per generation.", "percentunit",
                   [target(f"sum by ({_by(_GEN)}) ({q.rate(c.MEMORY_GC_PAUSE_TIME)})", by_gen)]),
        timeseries("GC pause duration", "Median and 99th percentile of collector pauses, per generation.",
                   "s", [
                       target(q.quantile(0.5, c.MEMORY_GC_PAUSE_DURATION, (_INSTANCE, _GEN)),
                              legend(_GEN, text="p50")),
                       target(q.quantile(0.99, c.MEMORY_GC_PAUSE_DURATION, (_INSTANCE, _GEN)),
                              legend(_GEN, text="p99")),
                   ]),
    )


def _response(layout: Layout, q: PromQL) -> None:
    action = label(c.ATTR_PRESSURE_ACTION)
    point = label(c.ATTR_ADMISSION_POINT)
    state = label(c.ATTR_PRESSURE_STATE)
    layout.row("Pressure response")
    layout.add(
        timeseries("Pressure actions", "Actions taken in response to pressure per second: gc_collect, "
                   "malloc_trim, cache_shrink, pool_release, reject.", "ops",
                   [target(f"sum by ({_by(action)}) ({q.rate(c.MEMORY_PRESSURE_ACTIONS)})",
                           legend(action))], width=8),
        timeseries("Memory reclaimed", "Memory given back to the operating system by pressure actions, "
                   "per second.", "Bps",
                   [target(f"sum by ({_by(action)}) ({q.rate(c.MEMORY_PRESSURE_RECLAIMED)})",
                           legend(action))], width=8),
        timeseries("Requests rejected", "Work refused per second because pressure was critical, by "
                   "where it was refused.", "reqps",
                   [target(f"sum by ({_by(point)}) ({q.rate(c.MEMORY_ADMISSION_REJECTIONS)})",
                           legend(point))], width=8),
        timeseries("Request latency by pressure level", "99th percentile of request duration through "
                   "the admission middleware, by the pressure level when the request began.", "s",
                   [target(q.quantile(0.99, c.MEMORY_REQUEST_DURATION, (_INSTANCE, state)),
                           legend(state, text="p99"))]),
        timeseries("Requests by pressure level", "Requests per second through the admission middleware, "
                   "by the pressure level when they began.", "reqps",
                   [target(f"sum by ({_by(state)}) ({q.rate(c.MEMORY_REQUEST_DURATION, '_count')})",
                           legend(state))]),
    )
