"""Prometheus alert rules generated from the catalogue, in the style of the monitoring mixins.

Names are CamelCase with the ``OtelMemory`` prefix; every rule has a ``severity`` label
(critical, warning, info) and ``summary``, ``description`` (templated with the values) and
``runbook_url`` annotations, the last pointing at a section of docs/runbook.md.

Example::

    for rule in alert_rules(prefix=""):
        print(rule.name, rule.severity, rule.expr)
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import catalog as c
from ..dashboards.promql import PromQL, label

ALERT_PREFIX = "OtelMemory"
RUNBOOK_URL = "https://github.com/otel-memory/otel-memory/blob/main/docs/runbook.md"
SEVERITIES = ("critical", "warning", "info")
GROUP_NAME = "otel-memory"

_TARGET = "job, instance"
_KIND = label(c.ATTR_LEAK_KIND)
_REASON = label(c.ATTR_LEAK_ALERT_REASON)
_WHO = "{{ $labels.job }} {{ $labels.instance }}"
_POOL = label(c.ATTR_POOL_NAME)
_DB_POOL = label(c.ATTR_DB_POOL_NAME)
_CACHE = label(c.ATTR_CACHE_NAME)


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule; ``for_s`` is the ``for`` duration in seconds.

    Example::

        AlertRule("PressureHigh", "max by (job, instance) (memory_pressure_level) == 2", 600,
                  "warning", "Memory pressure is high.", "...", "pressure-high")
    """

    short_name: str
    expr: str
    for_s: int
    severity: str
    summary: str
    description: str
    runbook_anchor: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} of {self.short_name} is not one of {SEVERITIES}")

    @property
    def name(self) -> str:
        """The alert name, with the shared prefix."""
        return ALERT_PREFIX + self.short_name

    @property
    def runbook_url(self) -> str:
        """Where the runbook says what to do (in this project's docs/runbook.md)."""
        return self.runbook_url_at(RUNBOOK_URL)

    def runbook_url_at(self, base: str) -> str:
        """The runbook section of this alert in a copy of docs/runbook.md published at ``base``."""
        return f"{base}#{self.runbook_anchor}"


def duration(seconds: float) -> str:
    """A Prometheus duration: ``90`` -> ``'90s'``, ``600`` -> ``'10m'``, ``3600`` -> ``'1h'``."""
    whole = round(seconds)
    if whole <= 0:
        return "0s"
    for unit, size in (("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def alert_rules(prefix: str = "") -> list[AlertRule]:
    """Every alert rule, for metric names with ``prefix``."""
    q = PromQL(prefix=prefix, matchers=())
    return [*_pressure_rules(q), *_pool_rules(q), *_cache_and_leak_rules(q)]


def _pressure_rules(q: PromQL) -> list[AlertRule]:
    level = f"max by ({_TARGET}) ({q.name(c.MEMORY_PRESSURE_LEVEL)})"
    utilization = f"max by ({_TARGET}) ({q.name(c.MEMORY_UTILIZATION)})"
    usage = q.name(c.MEMORY_ALLOCATED)
    return [
        AlertRule("PressureCritical", f"{level} >= 3", 120, "critical",
                  "Memory pressure is critical: the process is about to run out of memory.",
                  f"{_WHO} has been at CRITICAL memory pressure for 2 minutes; it is rejecting work "
                  "and may be killed for memory.", "memory-pressure-critical"),
        AlertRule("PressureHigh", f"{level} == 2", 600, "warning",
                  "Memory pressure has been high for 10 minutes.",
                  f"{_WHO} has been at HIGH memory pressure for 10 minutes; caches and pools are "
                  "shrinking and the garbage collector runs more often.", "memory-pressure-high"),
        AlertRule("PressureModerate", f"{level} == 1", 1800, "info",
                  "Memory pressure has been moderate for 30 minutes.",
                  f"{_WHO} has used more than its warning threshold for 30 minutes.",
                  "memory-pressure-moderate"),
        AlertRule("UsageNearLimit", f"{utilization} > 95", 300, "critical",
                  "Memory usage is near the effective limit.",
                  f"{_WHO} uses {{{{ $value | humanize }}}}% of its effective memory limit.",
                  "memory-usage-near-limit"),
        AlertRule("PredictedToReachLimit",
                  f"max by ({_TARGET}) (predict_linear({q.name(c.MEMORY_UTILIZATION)}[30m], 3600)) > 100",
                  900, "warning", "Memory usage is predicted to reach the limit within an hour.",
                  f"At the growth of the last 30 minutes, {_WHO} will reach "
                  "{{ $value | humanize }}% of its memory limit within an hour.",
                  "memory-predicted-to-reach-limit"),
        AlertRule("RequestsRejected",
                  f"sum by ({_TARGET}) ({q.rate(c.MEMORY_ADMISSION_REJECTIONS, window='5m')}) > 0",
                  300, "warning", "Requests are being rejected because memory pressure is critical.",
                  f"{_WHO} rejects {{{{ $value | humanize }}}} requests per second under critical "
                  "memory pressure.", "memory-requests-rejected"),
        AlertRule("ContainerOomKill",
                  f"sum by ({_TARGET}) ({q.increase(c.MEMORY_CONTAINER_OOM_KILLS, '30m')}) > 0",
                  0, "warning", "A process of the container was killed by the OOM killer.",
                  f"The OOM killer killed {{{{ $value | humanize }}}} processes in the container of {_WHO} "
                  "in the last 30 minutes.", "memory-container-oom-kill"),
        AlertRule("TelemetryAbsent",
                  f"group by (job) (max_over_time({usage}[1h])) unless group by (job) ({usage})",
                  600, "warning", "Memory telemetry has stopped arriving.",
                  "No memory telemetry has arrived from any instance of {{ $labels.job }} for 10 "
                  "minutes, although it reported in the last hour.", "memory-telemetry-absent"),
    ]


def _exhaustion(q: PromQL, pending: c.MetricSpec, timeouts: tuple[c.MetricSpec, ...], pool: str) -> str:
    group = f"{_TARGET}, {pool}"
    failures = [f"sum by ({group}) ({q.increase(spec, '5m')}) > 0" for spec in timeouts]
    return " or ".join([f"max by ({group}) ({q.name(pending)}) > 0", *failures])


def _pool_rules(q: PromQL) -> list[AlertRule]:
    return [
        AlertRule("PoolExhausted", _exhaustion(
            q, c.MEMORY_POOL_PENDING_REQUESTS, (c.MEMORY_POOL_TIMEOUTS, c.MEMORY_POOL_REJECTIONS), _POOL),
            300, "warning", "An object pool is exhausted: borrowers wait or time out.",
            f"Pool {{{{ $labels.{_POOL} }}}} of {_WHO} has had waiting borrowers or timeouts for 5 "
            "minutes (now {{ $value | humanize }}).", "pool-exhausted"),
        AlertRule("DbPoolExhausted", _exhaustion(
            q, c.DB_CLIENT_CONNECTION_PENDING_REQUESTS, (c.DB_CLIENT_CONNECTION_TIMEOUTS,), _DB_POOL),
            300, "warning", "A database connection pool is exhausted: requests wait or time out.",
            f"Connection pool {{{{ $labels.{_DB_POOL} }}}} of {_WHO} has had waiting requests or "
            "timeouts for 5 minutes (now {{ $value | humanize }}).", "pool-exhausted"),
        AlertRule("PoolLeakedBorrows",
                  f"sum by ({_TARGET}, {_POOL}) ({q.increase(c.MEMORY_POOL_LEAKED_BORROWS, '15m')}) > 0",
                  0, "warning", "Borrowed pool objects were never returned.",
                  f"{{{{ $value | humanize }}}} objects borrowed from pool {{{{ $labels.{_POOL} }}}} of "
                  f"{_WHO} were garbage-collected without being returned in the last 15 minutes.",
                  "pool-leaked-borrows"),
    ]


def _cache_and_leak_rules(q: PromQL) -> list[AlertRule]:
    group = f"{_TARGET}, {_CACHE}"
    result = label(c.ATTR_CACHE_RESULT)
    reason = label(c.ATTR_CACHE_EVICTION_REASON)
    requests = f"sum by ({group}) ({q.rate(c.MEMORY_CACHE_REQUESTS, window='10m')})"
    hits = f"sum by ({group}) ({q.rate(c.MEMORY_CACHE_REQUESTS, window='10m', **{result: 'hit'})})"
    capacity = {reason: '!~"explicit|expired"'}
    evictions = f"sum by ({group}) ({q.rate(c.MEMORY_CACHE_EVICTIONS, window='10m', **capacity)})"
    return [
        AlertRule("CacheThrashing",
                  f"({hits} / {requests} < 0.5) and ({evictions} > 0.1 * {requests})",
                  900, "warning", "A cache is thrashing: low hit ratio with many evictions.",
                  f"Cache {{{{ $labels.{_CACHE} }}}} of {_WHO} answers only "
                  "{{ $value | humanizePercentage }} of lookups while evicting more than one entry per "
                  "ten lookups; it is too small for its working set.", "cache-thrashing"),
        AlertRule("LeakSuspected",
                  f"sum by ({_TARGET}, {_KIND}) ({q.name(c.MEMORY_LEAK_SUSPECTS)}) > 0",
                  900, "warning", "The leak detector suspects a memory leak.",
                  f"{{{{ $value | humanize }}}} leak suspects of kind {{{{ $labels.{_KIND} }}}} "
                  f"(type, container, native or floor) in {_WHO} have kept growing for 15 minutes.",
                  "memory-leak-suspected"),
        AlertRule("LeakProcessGrowth",
                  f"max by ({_TARGET}, {_REASON}) ({q.name(c.MEMORY_LEAK_PROCESS_GROWTH_ALERT)}) > 0",
                  600, "warning", "The process keeps growing past the leak detector's thresholds.",
                  f"{_WHO} has grown past its leak threshold (reason {{{{ $labels.{_REASON} }}}}: "
                  "total growth over the trend window, or a sustained rate per hour) for 10 minutes.",
                  "memory-leak-process-growth"),
        AlertRule("GcUncollectableGrowing",
                  f"sum by ({_TARGET}) ({q.increase(c.CPYTHON_GC_UNCOLLECTABLE_OBJECTS, '30m')}) > 0",
                  900, "warning", "Uncollectable objects are accumulating in gc.garbage.",
                  f"{_WHO} found {{{{ $value | humanize }}}} uncollectable objects in the last 30 minutes.",
                  "gc-uncollectable-growing"),
    ]
