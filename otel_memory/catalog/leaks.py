"""Leak detection and memory trends, and the leak detector's span, event and attribute names.

Example::

    from otel_memory.catalog import MEMORY_LEAK_SUSPECTS, SPAN_LEAK_CHECK
"""

from __future__ import annotations

from ._spec import Group, Instrument, MetricSpec
from .attributes import ATTR_LEAK_ALERT_REASON, ATTR_LEAK_KIND

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

SPECS: tuple[MetricSpec, ...] = (
    MEMORY_TREND_GROWTH_RATE,
    MEMORY_TREND_DIRECTION,
    MEMORY_TREND_AVERAGE,
    MEMORY_LEAK_SUSPECTS,
    MEMORY_LEAK_SUSPECTS_DETECTED,
    MEMORY_LEAK_GROWTH_RATE,
    MEMORY_LEAK_CHECKS,
    MEMORY_LEAK_CHECK_DURATION,
    MEMORY_LEAK_OBJECTS_SCANNED,
    MEMORY_LEAK_PROCESS_GROWTH_ALERT,
    MEMORY_LEAK_NATIVE_SIZE,
    MEMORY_MALLOC_RETAINED,
)
