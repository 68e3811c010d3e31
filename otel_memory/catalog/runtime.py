"""Runtime signals: process memory, the limit and PSI, the garbage collector, pressure levels.

Example::

    from otel_memory.catalog import MEMORY_ALLOCATED
    MEMORY_ALLOCATED.prometheus_name      # 'memory_allocated_bytes'
"""

from __future__ import annotations

from ._spec import PAUSE_BUCKETS_S, SYSTEM_METRICS, Group, Instrument, MetricSpec
from .attributes import (
    ATTR_GC_GENERATION,
    ATTR_LIMIT_SOURCE,
    ATTR_PAGING_FAULT_TYPE,
    ATTR_PRESSURE_STATE,
    ATTR_PSI_SCOPE,
    ATTR_THRESHOLD_KIND,
)

# --- process memory (psutil / procfs / getrusage, one shared sample per collection) ----------

PROCESS_MEMORY_USAGE = MetricSpec(
    "process.memory.usage", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "By",
    "The amount of physical memory in use (resident set size).", Group.PROCESS,
    meaning="RSS of this process: every page of the interpreter, its heap, arenas, extension "
    "modules and shared libraries that is resident in RAM. Semantic-convention name.",
    shared_with=SYSTEM_METRICS,
)
PROCESS_MEMORY_VIRTUAL = MetricSpec(
    "process.memory.virtual", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "By",
    "The amount of committed virtual memory.", Group.PROCESS,
    meaning="Virtual address space of this process (VmSize). Large and mostly harmless in "
    "Python; it matters when RLIMIT_AS is the effective limit.",
    shared_with=SYSTEM_METRICS,
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
    "is the container's, else RSS) divided by the effective limit, times 100. In percent rather "
    "than the ratio of process.memory.utilization, so its Prometheus name is the same on the "
    "exporter and the OTLP paths (see Naming decisions).",
)
MEMORY_THRESHOLD = MetricSpec(
    "memory.threshold", Instrument.OBSERVABLE_GAUGE, "By",
    "The usage at which each pressure level begins.", Group.PRESSURE, (ATTR_THRESHOLD_KIND,),
    meaning="Thresholds for moderate (warning_threshold_mb), high (gc_pressure_threshold_mb) "
    "and critical (critical_threshold_mb), so dashboards can draw them.",
)
CONTAINER_MEMORY_USAGE = MetricSpec(
    "container.memory.usage", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "By",
    "Memory usage of the container: memory charged to this process's cgroup, page cache included.",
    Group.PROCESS,
    meaning="cgroup v2 memory.current (v1 memory.usage_in_bytes): all processes of the "
    "container together, page cache included. Present only inside a cgroup that can be read. "
    "Semantic-convention name; in Prometheus it is cAdvisor's name too, so select it by job.",
)
CONTAINER_MEMORY_WORKING_SET = MetricSpec(
    "container.memory.working_set", Instrument.OBSERVABLE_UP_DOWN_COUNTER, "By",
    "Container memory working set: the cgroup's usage less its inactive file cache.", Group.PROCESS,
    meaning="memory.current minus inactive_file, the figure Kubernetes evicts on and the one "
    "pressure is computed from when the limit is the container's. Semantic-convention name; in "
    "Prometheus it is cAdvisor's name too, so select it by job.",
)
#: The names these entries had before issue 14 (memory.container.*); kept for code that used them.
MEMORY_CONTAINER_USAGE = CONTAINER_MEMORY_USAGE
MEMORY_CONTAINER_WORKING_SET = CONTAINER_MEMORY_WORKING_SET
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
MEMORY_ALLOCATED_BLOCKS = MetricSpec(
    "memory.allocated_blocks", Instrument.OBSERVABLE_GAUGE, "{block}",
    "Memory blocks currently allocated by the Python allocator.", Group.PROCESS,
    alias="memory_allocation_count",
    meaning="sys.getallocatedblocks(): live blocks from pymalloc (objects and buffers up to "
    "512 bytes) plus larger blocks through PyMem. The original design's allocation count; "
    "it rises with live objects, not with allocation rate. Its original Prometheus name "
    "memory_allocation_count is a recording rule: a gauge exported under it fails promtool's "
    "lint, where _count belongs to histograms and summaries (see Naming decisions).",
)
#: The name this entry had before issue 14; kept for code that used it.
MEMORY_ALLOCATION_COUNT = MEMORY_ALLOCATED_BLOCKS
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
    shared_with=SYSTEM_METRICS,
)
CPYTHON_GC_COLLECTED_OBJECTS = MetricSpec(
    "cpython.gc.collected_objects", Instrument.OBSERVABLE_COUNTER, "{object}",
    "The number of objects collected inside a generation.", Group.GC, (ATTR_GC_GENERATION,),
    meaning="gc.get_stats()[gen]['collected']: unreachable objects found in cycles and freed.",
    shared_with=SYSTEM_METRICS,
)
CPYTHON_GC_UNCOLLECTABLE_OBJECTS = MetricSpec(
    "cpython.gc.uncollectable_objects", Instrument.OBSERVABLE_COUNTER, "{object}",
    "The number of uncollectable objects found inside a generation.", Group.GC,
    (ATTR_GC_GENERATION,),
    meaning="gc.get_stats()[gen]['uncollectable']: objects kept in gc.garbage. Growth is a leak.",
    shared_with=SYSTEM_METRICS,
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

SPECS: tuple[MetricSpec, ...] = (
    PROCESS_MEMORY_USAGE,
    PROCESS_MEMORY_VIRTUAL,
    PROCESS_PAGING_FAULTS,
    MEMORY_ALLOCATED,
    MEMORY_PEAK,
    MEMORY_LIMIT,
    MEMORY_UTILIZATION,
    MEMORY_THRESHOLD,
    CONTAINER_MEMORY_USAGE,
    CONTAINER_MEMORY_WORKING_SET,
    MEMORY_CONTAINER_OOM_KILLS,
    MEMORY_PSI_STALL,
    MEMORY_ALLOCATED_BLOCKS,
    MEMORY_USS,
    MEMORY_TRACEMALLOC_CURRENT,
    MEMORY_TRACEMALLOC_PEAK,
    CPYTHON_GC_COLLECTIONS,
    CPYTHON_GC_COLLECTED_OBJECTS,
    CPYTHON_GC_UNCOLLECTABLE_OBJECTS,
    MEMORY_GC_PAUSE_DURATION,
    MEMORY_GC_PAUSE_TIME,
    MEMORY_PRESSURE_LEVEL,
    MEMORY_PRESSURE_TRANSITIONS,
)
