"""The metric catalogue: every metric otel_memory emits, defined once.

Instruments, ``docs/metrics.md``, the Grafana dashboards and the Prometheus alert rules all
read these definitions; no metric name is written as a string anywhere else. Each entry says
what it measures in Python terms, its instrument kind, unit, attributes and, derived from
those, the name it gets in Prometheus.

Example::

    from otel_memory import catalog

    catalog.MEMORY_ALLOCATED.prometheus_name   # 'memory_allocated_bytes'
    catalog.by_name("memory.pool.size").unit   # '{object}'
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass

# --- attribute keys -------------------------------------------------------------------------

ATTR_GC_GENERATION = "cpython.gc.generation"
ATTR_PAGING_FAULT_TYPE = "system.paging.fault.type"
ATTR_LIMIT_SOURCE = "memory.limit.source"
ATTR_THRESHOLD_KIND = "memory.threshold.kind"
ATTR_PSI_SCOPE = "memory.psi.scope"
ATTR_PRESSURE_STATE = "memory.pressure.state"
ATTR_PRESSURE_ACTION = "memory.pressure.action"
ATTR_ADMISSION_POINT = "memory.admission.point"
ATTR_HTTP_STATUS_CODE = "http.response.status_code"
ATTR_POOL_NAME = "pool.name"
ATTR_POOL_DESTROY_REASON = "pool.destroy.reason"
ATTR_DB_POOL_NAME = "db.client.connection.pool.name"
ATTR_DB_STATE = "db.client.connection.state"
ATTR_CACHE_NAME = "cache.name"
ATTR_CACHE_RESULT = "cache.result"
ATTR_CACHE_EVICTION_REASON = "cache.eviction.reason"
ATTR_CACHE_LOAD_RESULT = "cache.load.result"
ATTR_LEAK_KIND = "memory.leak.kind"
ATTR_LEAK_ALERT_REASON = "memory.leak.alert.reason"

# Bucket boundaries in seconds. The SDK's default buckets are made for milliseconds.
PAUSE_BUCKETS_S: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)
WAIT_BUCKETS_S: tuple[float, ...] = (
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


class Instrument(enum.Enum):
    """The OpenTelemetry instrument kind of a metric."""

    OBSERVABLE_GAUGE = "ObservableGauge"
    OBSERVABLE_COUNTER = "ObservableCounter"
    OBSERVABLE_UP_DOWN_COUNTER = "ObservableUpDownCounter"
    HISTOGRAM = "Histogram"

    @property
    def prometheus_type(self) -> str:
        """The Prometheus metric type this instrument is exported as."""
        return {
            Instrument.OBSERVABLE_GAUGE: "gauge",
            Instrument.OBSERVABLE_COUNTER: "counter",
            Instrument.OBSERVABLE_UP_DOWN_COUNTER: "gauge",
            Instrument.HISTOGRAM: "histogram",
        }[self]


class Group(enum.Enum):
    """Which capability a metric belongs to; docs and dashboards are organised by it."""

    PROCESS = "process"
    GC = "gc"
    PRESSURE = "pressure"
    POOL = "pool"
    DB = "db"
    CACHE = "cache"
    LEAK = "leak"
    RESPONSE = "response"


_UNIT_SUFFIXES = {"By": "bytes", "s": "seconds", "%": "percent", "By/s": "bytes_per_second", "1": ""}
_ANNOTATION = re.compile(r"\{[^}]*\}")
_INVALID = re.compile(r"[^a-zA-Z0-9:]+")


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its OpenTelemetry identity and what it means.

    Example::

        spec = MetricSpec("memory.peak", Instrument.OBSERVABLE_GAUGE, "By", "Peak RSS.", Group.PROCESS)
        spec.prometheus_name   # 'memory_peak_bytes'
    """

    name: str
    instrument: Instrument
    unit: str
    description: str
    group: Group
    attributes: tuple[str, ...] = ()
    meaning: str = ""
    buckets: tuple[float, ...] | None = None
    opt_in: str | None = None

    @property
    def prometheus_name(self) -> str:
        """The name the OpenTelemetry Prometheus exporter gives this metric.

        Dots become underscores, the unit adds its suffix (``By`` -> ``_bytes``), annotations
        in braces add nothing, monotonic counters end in ``_total``. Histograms are exported as
        ``<name>_bucket``, ``<name>_sum`` and ``<name>_count`` of this base name.
        """
        base = _INVALID.sub("_", self.name)
        unit = _ANNOTATION.sub("", self.unit)
        suffix = _UNIT_SUFFIXES.get(unit, _INVALID.sub("_", unit))
        if suffix and not base.endswith("_" + suffix):
            base = f"{base}_{suffix}"
        if self.instrument is Instrument.OBSERVABLE_COUNTER:
            base += "_total"
        return base

    @property
    def prometheus_labels(self) -> tuple[str, ...]:
        """The attribute keys as Prometheus label names."""
        return tuple(re.sub(r"[^a-zA-Z0-9]+", "_", key) for key in self.attributes)


# --- process memory (psutil / procfs / getrusage, one shared sample per collection) ----------

PROCESS_MEMORY_USAGE = MetricSpec(
    "process.memory.usage", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "By",
    "The amount of physical memory in use (resident set size).", Group.PROCESS,
    meaning="RSS of this process: every page of the interpreter, its heap, arenas, extension "
    "modules and shared libraries that is resident in RAM. Semantic-convention name.",
)
PROCESS_MEMORY_VIRTUAL = MetricSpec(
    "process.memory.virtual", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "By",
    "The amount of committed virtual memory.", Group.PROCESS,
    meaning="Virtual address space of this process (VmSize). Large and mostly harmless in "
    "Python; it matters when RLIMIT_AS is the effective limit.",
)
PROCESS_PAGING_FAULTS = MetricSpec(
    "process.paging.faults", Instrument.OBSERVABLE_COUNTER, "{fault}",
    "Number of page faults the process has made.", Group.PROCESS, (ATTR_PAGING_FAULT_TYPE,),
    meaning="Minor and major page faults from getrusage(). Major faults mean pages read back "
    "from disk or swap: a sign the host is short of memory.",
)
MEMORY_ALLOCATED = MetricSpec(
    "memory.allocated", Instrument.OBSERVABLE_GAUGE, "By",
    "Memory currently allocated to this process (resident set size).", Group.PROCESS,
    meaning="The original design's allocated bytes. Python has no global allocator hook that "
    "is cheap enough to run always, so this is the RSS of the process, the figure the kernel "
    "charges against its limit. Equal to process.memory.usage; kept for the original name.",
)
MEMORY_PEAK = MetricSpec(
    "memory.peak", Instrument.OBSERVABLE_GAUGE, "By",
    "Peak resident set size of this process.", Group.PROCESS,
    meaning="High-water mark of RSS as the kernel records it (VmHWM / ru_maxrss), so spikes "
    "between two samples are not missed.",
)
MEMORY_LIMIT = MetricSpec(
    "memory.limit", Instrument.OBSERVABLE_GAUGE, "By",
    "The effective memory limit of this process.", Group.PROCESS, (ATTR_LIMIT_SOURCE,),
    meaning="The configured max_heap_mb, else the cgroup v2 memory.max, the cgroup v1 "
    "memory.limit_in_bytes, RLIMIT_AS or physical memory, in that order. The source "
    "attribute says which (config, cgroup_v2, cgroup_v1, rlimit_as, physical).",
)
MEMORY_UTILIZATION = MetricSpec(
    "memory.utilization", Instrument.OBSERVABLE_GAUGE, "%",
    "Memory usage as a percentage of the effective limit.", Group.PROCESS,
    meaning="The usage pressure is computed from (the container's working set when the limit "
    "is the container's, else RSS) divided by the effective limit, times 100. Unit % keeps the "
    "Prometheus name the same on the exporter and the OTLP paths.",
)
MEMORY_THRESHOLD = MetricSpec(
    "memory.threshold", Instrument.OBSERVABLE_GAUGE, "By",
    "The usage at which each pressure level begins.", Group.PRESSURE, (ATTR_THRESHOLD_KIND,),
    meaning="Thresholds for moderate (warning_threshold_mb), high (gc_pressure_threshold_mb) "
    "and critical (critical_threshold_mb), so dashboards can draw them.",
)
MEMORY_CONTAINER_USAGE = MetricSpec(
    "memory.container.usage", Instrument.OBSERVABLE_GAUGE, "By",
    "Memory charged to this process's cgroup, page cache included.", Group.PROCESS,
    meaning="cgroup v2 memory.current (v1 memory.usage_in_bytes): all processes of the "
    "container together, page cache included. Present only inside a cgroup that can be read.",
)
MEMORY_CONTAINER_WORKING_SET = MetricSpec(
    "memory.container.working_set", Instrument.OBSERVABLE_GAUGE, "By",
    "The cgroup's usage less its inactive file cache.", Group.PROCESS,
    meaning="memory.current minus inactive_file, the figure Kubernetes evicts on and the one "
    "pressure is computed from when the limit is the container's.",
)
MEMORY_CONTAINER_OOM_KILLS = MetricSpec(
    "memory.container.oom_kills", Instrument.OBSERVABLE_COUNTER, "{kill}",
    "Processes of this cgroup killed by the OOM killer.", Group.PROCESS,
    meaning="oom_kill from the cgroup's memory.events: a sibling worker killed for memory.",
)
MEMORY_PSI_STALL = MetricSpec(
    "memory.psi.stall", Instrument.OBSERVABLE_COUNTER, "s",
    "Time tasks stalled waiting for memory (pressure stall information).", Group.PROCESS,
    (ATTR_PSI_SCOPE,),
    meaning="The total field of /proc/pressure/memory in seconds: 'some' is time at least one "
    "task waited on reclaim or swap, 'full' time all of them did. Host-wide unless the "
    "cgroup's memory.pressure can be read.",
)
MEMORY_ALLOCATION_COUNT = MetricSpec(
    "memory.allocation.count", Instrument.OBSERVABLE_GAUGE, "{block}",
    "Memory blocks currently allocated by the Python allocator.", Group.PROCESS,
    meaning="sys.getallocatedblocks(): live blocks from pymalloc (objects and buffers up to "
    "512 bytes) plus larger blocks through PyMem. The original design's allocation count; "
    "it rises with live objects, not with allocation rate.",
)
MEMORY_USS = MetricSpec(
    "memory.uss", Instrument.OBSERVABLE_GAUGE, "By",
    "Memory unique to this process (unique set size).", Group.PROCESS, opt_in="enable_uss",
    meaning="What would be freed if the process exited; excludes pages shared with forked "
    "siblings. Reads smaps (~0.3 ms), so it is opt-in (enable_uss).",
)
MEMORY_TRACEMALLOC_CURRENT = MetricSpec(
    "memory.tracemalloc.current", Instrument.OBSERVABLE_GAUGE, "By",
    "Memory traced by tracemalloc now.", Group.PROCESS, opt_in="enable_tracemalloc",
    meaning="tracemalloc.get_traced_memory()[0]: bytes allocated by Python and still alive. "
    "Only while tracing, which slows allocation-heavy code 3-8x.",
)
MEMORY_TRACEMALLOC_PEAK = MetricSpec(
    "memory.tracemalloc.peak", Instrument.OBSERVABLE_GAUGE, "By",
    "Peak memory traced by tracemalloc.", Group.PROCESS, opt_in="enable_tracemalloc",
    meaning="tracemalloc.get_traced_memory()[1]. Only while tracing.",
)

# --- garbage collector ------------------------------------------------------------------

CPYTHON_GC_COLLECTIONS = MetricSpec(
    "cpython.gc.collections", Instrument.OBSERVABLE_COUNTER, "{collection}",
    "The number of times a generation was collected.", Group.GC, (ATTR_GC_GENERATION,),
    meaning="gc.get_stats()[gen]['collections']. Semantic-convention name.",
)
CPYTHON_GC_COLLECTED_OBJECTS = MetricSpec(
    "cpython.gc.collected_objects", Instrument.OBSERVABLE_COUNTER, "{object}",
    "The number of objects collected inside a generation.", Group.GC, (ATTR_GC_GENERATION,),
    meaning="gc.get_stats()[gen]['collected']: unreachable objects found in cycles and freed.",
)
CPYTHON_GC_UNCOLLECTABLE_OBJECTS = MetricSpec(
    "cpython.gc.uncollectable_objects", Instrument.OBSERVABLE_COUNTER, "{object}",
    "The number of uncollectable objects found inside a generation.", Group.GC,
    (ATTR_GC_GENERATION,),
    meaning="gc.get_stats()[gen]['uncollectable']: objects kept in gc.garbage. Growth is a leak.",
)
MEMORY_GC_PAUSE_DURATION = MetricSpec(
    "memory.gc.pause.duration", Instrument.HISTOGRAM, "s",
    "Duration of garbage collector pauses.", Group.GC, (ATTR_GC_GENERATION,),
    buckets=PAUSE_BUCKETS_S,
    meaning="Wall time between the start and stop callbacks of gc.callbacks, per generation: "
    "the time the interpreter stopped running your code to collect cycles.",
)
MEMORY_GC_PAUSE_TIME = MetricSpec(
    "memory.gc.pause.time", Instrument.OBSERVABLE_COUNTER, "s",
    "Total time spent in garbage collector pauses.", Group.GC, (ATTR_GC_GENERATION,),
    meaning="The sum of all pauses since start, per generation; rate() of it is the share of "
    "wall time lost to the collector.",
)

# --- pressure ---------------------------------------------------------------------------

MEMORY_PRESSURE_LEVEL = MetricSpec(
    "memory.pressure.level", Instrument.OBSERVABLE_GAUGE, "{level}",
    "Current memory pressure level: 0 low, 1 moderate, 2 high, 3 critical.", Group.PRESSURE,
    meaning="Computed each monitoring tick from usage against the thresholds, with hysteresis.",
)
MEMORY_PRESSURE_TRANSITIONS = MetricSpec(
    "memory.pressure.transitions", Instrument.OBSERVABLE_COUNTER, "{transition}",
    "Changes of the pressure level, by the level entered.", Group.PRESSURE, (ATTR_PRESSURE_STATE,),
    meaning="Counts every change of level; the state attribute is the level entered "
    "(low, moderate, high, critical).",
)

# --- pressure response (gc, trim, admission) --------------------------------------------

MEMORY_PRESSURE_ACTIONS = MetricSpec(
    "memory.pressure.actions", Instrument.OBSERVABLE_COUNTER, "{action}",
    "Actions taken in response to memory pressure, by kind.", Group.RESPONSE,
    (ATTR_PRESSURE_ACTION,),
    meaning="gc_collect, malloc_trim, cache_shrink, pool_release and reject, each counted "
    "when the pressure policy runs it.",
)
MEMORY_PRESSURE_RECLAIMED = MetricSpec(
    "memory.pressure.reclaimed", Instrument.OBSERVABLE_COUNTER, "By",
    "Memory given back to the operating system by pressure actions.", Group.RESPONSE,
    (ATTR_PRESSURE_ACTION,),
    meaning="RSS before minus RSS after each gc.collect() and malloc_trim(0), when positive.",
)
MEMORY_ADMISSION_REJECTIONS = MetricSpec(
    "memory.admission.rejections", Instrument.OBSERVABLE_COUNTER, "{request}",
    "Work refused because memory pressure was critical.", Group.RESPONSE, (ATTR_ADMISSION_POINT,),
    meaning="MemoryManager.admit() refusals, by where they happened (admit, decorator, asgi, "
    "wsgi).",
)
MEMORY_REQUEST_DURATION = MetricSpec(
    "memory.request.duration", Instrument.HISTOGRAM, "s",
    "Duration of requests served through the admission middleware, by pressure level.",
    Group.RESPONSE, (ATTR_PRESSURE_STATE, ATTR_HTTP_STATUS_CODE), buckets=WAIT_BUCKETS_S,
    meaning="Wall time of each request the ASGI/WSGI middleware saw, with the pressure level "
    "when it began: latency by pressure level.",
)

# --- object pools -----------------------------------------------------------------------

MEMORY_POOL_SIZE = MetricSpec(
    "memory.pool.size", Instrument.OBSERVABLE_GAUGE, "{object}",
    "Objects the pool holds, idle and borrowed.", Group.POOL, (ATTR_POOL_NAME,),
    meaning="The original design's pool size.",
)
MEMORY_POOL_BORROWED = MetricSpec(
    "memory.pool.borrowed", Instrument.OBSERVABLE_GAUGE, "{object}",
    "Objects currently lent out.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_IDLE = MetricSpec(
    "memory.pool.idle", Instrument.OBSERVABLE_GAUGE, "{object}",
    "Objects waiting in the pool to be borrowed.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_MAX = MetricSpec(
    "memory.pool.max", Instrument.OBSERVABLE_GAUGE, "{object}",
    "The most objects the pool may hold.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_PENDING_REQUESTS = MetricSpec(
    "memory.pool.pending_requests", Instrument.OBSERVABLE_GAUGE, "{request}",
    "Borrowers waiting for an object.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_BORROWS = MetricSpec(
    "memory.pool.borrows", Instrument.OBSERVABLE_COUNTER, "{borrow}",
    "Objects lent out.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_TIMEOUTS = MetricSpec(
    "memory.pool.timeouts", Instrument.OBSERVABLE_COUNTER, "{timeout}",
    "Borrows that gave up after the timeout.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_REJECTIONS = MetricSpec(
    "memory.pool.rejections", Instrument.OBSERVABLE_COUNTER, "{request}",
    "Borrows refused at once because max_waiting borrowers already waited.", Group.POOL,
    (ATTR_POOL_NAME,),
)
MEMORY_POOL_CREATED = MetricSpec(
    "memory.pool.created", Instrument.OBSERVABLE_COUNTER, "{object}",
    "Objects the factory created.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_CREATE_ERRORS = MetricSpec(
    "memory.pool.create_errors", Instrument.OBSERVABLE_COUNTER, "{error}",
    "Factory calls that raised.", Group.POOL, (ATTR_POOL_NAME,),
)
MEMORY_POOL_DESTROYED = MetricSpec(
    "memory.pool.destroyed", Instrument.OBSERVABLE_COUNTER, "{object}",
    "Objects the pool destroyed, by reason.", Group.POOL, (ATTR_POOL_NAME, ATTR_POOL_DESTROY_REASON),
    meaning="Reasons: health_check, max_lifetime, idle_timeout, pressure, discarded, closed.",
)
MEMORY_POOL_LEAKED_BORROWS = MetricSpec(
    "memory.pool.leaked_borrows", Instrument.OBSERVABLE_COUNTER, "{borrow}",
    "Borrowed objects never returned: reclaimed by the garbage collector.", Group.POOL,
    (ATTR_POOL_NAME,),
)
MEMORY_POOL_WAIT_TIME = MetricSpec(
    "memory.pool.wait_time", Instrument.HISTOGRAM, "s",
    "Time a borrow waited for an object (only borrows that had to wait).", Group.POOL,
    (ATTR_POOL_NAME,), buckets=WAIT_BUCKETS_S,
)
MEMORY_POOL_CREATE_TIME = MetricSpec(
    "memory.pool.create_time", Instrument.HISTOGRAM, "s",
    "Time the factory took to create an object.", Group.POOL, (ATTR_POOL_NAME,),
    buckets=WAIT_BUCKETS_S,
)
MEMORY_POOL_USE_TIME = MetricSpec(
    "memory.pool.use_time", Instrument.HISTOGRAM, "s",
    "Time an object was held by its borrower (when use timing is enabled).", Group.POOL,
    (ATTR_POOL_NAME,), buckets=WAIT_BUCKETS_S,
)

# --- database connection pools (semantic conventions) -----------------------------------

DB_CLIENT_CONNECTION_COUNT = MetricSpec(
    "db.client.connection.count", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{connection}",
    "The number of connections that are currently in the state described by the state attribute.",
    Group.DB, (ATTR_DB_POOL_NAME, ATTR_DB_STATE),
)
DB_CLIENT_CONNECTION_MAX = MetricSpec(
    "db.client.connection.max", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{connection}",
    "The maximum number of open connections allowed.", Group.DB, (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_IDLE_MAX = MetricSpec(
    "db.client.connection.idle.max", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{connection}",
    "The maximum number of idle open connections allowed.", Group.DB, (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_IDLE_MIN = MetricSpec(
    "db.client.connection.idle.min", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{connection}",
    "The minimum number of idle open connections allowed.", Group.DB, (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_PENDING_REQUESTS = MetricSpec(
    "db.client.connection.pending_requests", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "{request}",
    "The number of current pending requests for an open connection.", Group.DB,
    (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_TIMEOUTS = MetricSpec(
    "db.client.connection.timeouts", Instrument.OBSERVABLE_COUNTER, "{timeout}",
    "The number of connection timeouts that have occurred trying to obtain a connection from the pool.",
    Group.DB, (ATTR_DB_POOL_NAME,),
)
DB_CLIENT_CONNECTION_CREATE_TIME = MetricSpec(
    "db.client.connection.create_time", Instrument.HISTOGRAM, "s",
    "The time it took to create a new connection.", Group.DB, (ATTR_DB_POOL_NAME,),
    buckets=WAIT_BUCKETS_S,
)
DB_CLIENT_CONNECTION_WAIT_TIME = MetricSpec(
    "db.client.connection.wait_time", Instrument.HISTOGRAM, "s",
    "The time it took to obtain an open connection from the pool.", Group.DB, (ATTR_DB_POOL_NAME,),
    buckets=WAIT_BUCKETS_S,
)
DB_CLIENT_CONNECTION_USE_TIME = MetricSpec(
    "db.client.connection.use_time", Instrument.HISTOGRAM, "s",
    "The time between borrowing a connection and returning it to the pool.", Group.DB,
    (ATTR_DB_POOL_NAME,), buckets=WAIT_BUCKETS_S,
)

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

# --- leak detection and trends ----------------------------------------------------------

MEMORY_TREND_GROWTH_RATE = MetricSpec(
    "memory.trend.growth_rate", Instrument.OBSERVABLE_GAUGE, "By/s",
    "Growth of usage over the trend window (least-squares slope).", Group.LEAK,
    meaning="Slope of usage samples over the rolling window; negative when memory falls.",
)
MEMORY_TREND_DIRECTION = MetricSpec(
    "memory.trend.direction", Instrument.OBSERVABLE_GAUGE, "{trend}",
    "Trend of usage: -1 decreasing, 0 stable, 1 increasing.", Group.LEAK,
    meaning="Stable while the slope stays inside the noise band.",
)
MEMORY_TREND_AVERAGE = MetricSpec(
    "memory.trend.average", Instrument.OBSERVABLE_GAUGE, "By",
    "Rolling average of usage over the trend window.", Group.LEAK,
)
MEMORY_LEAK_SUSPECTS = MetricSpec(
    "memory.leak.suspects", Instrument.OBSERVABLE_GAUGE, "{suspect}",
    "Current leak suspects, by kind (type, container, native, floor).", Group.LEAK,
    (ATTR_LEAK_KIND,),
    meaning="type: a type whose count or bytes set new peaks over several heap censuses; "
            "container: one dict/list/set whose length does; native: resident memory the "
            "Python heap does not account for, growing; floor: a type whose floor rises "
            "under churn of its own kind.",
)
MEMORY_LEAK_SUSPECTS_DETECTED = MetricSpec(
    "memory.leak.suspects.detected", Instrument.OBSERVABLE_COUNTER, "{suspect}",
    "Leak suspects found, by kind: counted each time one appears (again after going stale).",
    Group.LEAK, (ATTR_LEAK_KIND,),
)
MEMORY_LEAK_GROWTH_RATE = MetricSpec(
    "memory.leak.growth_rate", Instrument.OBSERVABLE_GAUGE, "By/s",
    "Combined growth rate of the current leak suspects.", Group.LEAK,
)
MEMORY_LEAK_CHECKS = MetricSpec(
    "memory.leak.checks", Instrument.OBSERVABLE_COUNTER, "{check}",
    "Heap censuses taken by the leak detector.", Group.LEAK,
)
MEMORY_LEAK_CHECK_DURATION = MetricSpec(
    "memory.leak.check.duration", Instrument.OBSERVABLE_GAUGE, "s",
    "Wall time of the last leak check.", Group.LEAK,
)
MEMORY_LEAK_OBJECTS_SCANNED = MetricSpec(
    "memory.leak.objects_scanned", Instrument.OBSERVABLE_GAUGE, "{object}",
    "Objects the last leak check looked at.", Group.LEAK,
)
MEMORY_LEAK_PROCESS_GROWTH_ALERT = MetricSpec(
    "memory.leak.process_growth_alert", Instrument.OBSERVABLE_GAUGE, "{alert}",
    "1 while usage grew more than leak_detection_threshold_mb over the trend window (reason "
    "total) or faster than leak_growth_mb_per_hour over a full window (reason rate), else 0.",
    Group.LEAK, (ATTR_LEAK_ALERT_REASON,),
    meaning="A process-level leak alert, raised before (or without) any type being blamed; "
            "one point per reason.",
)
MEMORY_LEAK_NATIVE_SIZE = MetricSpec(
    "memory.leak.native.size", Instrument.OBSERVABLE_GAUGE, "By",
    "Resident memory the Python heap does not account for: RSS minus the census's bytes minus "
    "malloc's retained free bytes.", Group.LEAK,
    meaning="Interpreter, libraries and C extensions' own memory; steady growth is a native leak.",
)
MEMORY_MALLOC_RETAINED = MetricSpec(
    "memory.malloc.retained", Instrument.OBSERVABLE_GAUGE, "By",
    "Freed memory glibc malloc keeps in its arenas (mallinfo2 fordblks); malloc_trim returns most.",
    Group.LEAK,
    meaning="Growth here is retention, not a leak. Only where glibc is the allocator.",
)

# Spans and span attributes of the leak detector (not metrics; defined here so names live once).
SPAN_LEAK_CHECK = "memory.leak_check"
EVENT_LEAK_SUSPECT = "memory.leak_suspect"
EVENT_LEAK_PROCESS_GROWTH = "memory.leak_process_growth"
ATTR_LEAK_CHECK_PREFIX = "memory.leak.check."          # + objects_scanned, heap_bytes, duration_s, ...
ATTR_LEAK_SUSPECT_PREFIX = "memory.leak.suspect."      # + each LeakSuspect field
ATTR_LEAK_PROCESS_GROWTH_PREFIX = "memory.leak.process_growth."   # + each ProcessGrowth field

ALL: tuple[MetricSpec, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, MetricSpec)
)
_BY_NAME = {spec.name: spec for spec in ALL}


def by_name(name: str) -> MetricSpec:
    """The catalogue entry for an OpenTelemetry metric name; KeyError names what is known."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the otel_memory metric catalogue") from None


def in_group(*groups: Group) -> Iterator[MetricSpec]:
    """The entries of the given groups, in catalogue order."""
    return (spec for spec in ALL if spec.group in groups)
