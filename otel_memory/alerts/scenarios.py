"""``promtool test rules`` cases: each alert fires when it should and stays silent when not.

Series are written with the catalogue's names (and the user's prefix), so the unit tests in
``alerts/tests/`` are generated next to the rules they test and can never drift from them.
Times are minutes from the start of a case; values use promtool's expanding notation.

Example::

    for scenario in SCENARIOS:
        print(scenario.alert, scenario.fires_at, scenario.silent_at)
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import catalog as c
from ..dashboards.promql import label

JOB = "checkout"
INSTANCE = "10.0.0.7:9464"
_SCOPE = {"otel_scope_name": "otel_memory"}
_POOL = {label(c.ATTR_POOL_NAME): "buffers"}
_DB_POOL = {label(c.ATTR_DB_POOL_NAME): "orders"}
_CACHE = {label(c.ATTR_CACHE_NAME): "sessions"}


@dataclass(frozen=True)
class Series:
    """One input series: catalogue entry, extra labels and promtool values (one per minute).

    Example::

        Series(c.MEMORY_PRESSURE_LEVEL, "0 3x10")
    """

    spec: c.MetricSpec
    values: str
    labels: tuple[tuple[str, str], ...] = ()
    suffix: str = ""


@dataclass(frozen=True)
class Scenario:
    """Inputs, the minutes at which the alert must not fire, and when (and how) it fires.

    Example::

        Scenario("PressureCritical", "critical for 10 minutes", (Series(...),), silent_at=(2,),
                 fires_at=3, value="3")
    """

    alert: str
    title: str
    series: tuple[Series, ...]
    silent_at: tuple[int, ...] = ()
    fires_at: int | None = None
    value: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    per_job_only: bool = False


def _l(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(labels.items())


def _with(base: dict[str, str], **more: str) -> tuple[tuple[str, str], ...]:
    return tuple({**base, **more}.items())


_HIT = label(c.ATTR_CACHE_RESULT)
_GEN2 = _l(**{label(c.ATTR_GC_GENERATION): "2"})
_REASON = label(c.ATTR_CACHE_EVICTION_REASON)
_KIND = label(c.ATTR_LEAK_KIND)
_ALERT = label(c.ATTR_LEAK_ALERT_REASON)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("PressureCritical", "critical pressure for 10 minutes fires after 2",
             (Series(c.MEMORY_PRESSURE_LEVEL, "0 3x10"),), silent_at=(2,), fires_at=3),
    Scenario("PressureCritical", "high pressure is not critical",
             (Series(c.MEMORY_PRESSURE_LEVEL, "2x20"),), silent_at=(15,)),
    Scenario("PressureHigh", "high pressure for 20 minutes fires after 10",
             (Series(c.MEMORY_PRESSURE_LEVEL, "0 2x20"),), silent_at=(10,), fires_at=11),
    Scenario("PressureHigh", "critical pressure is left to the critical alert",
             (Series(c.MEMORY_PRESSURE_LEVEL, "3x20"),), silent_at=(15,)),
    Scenario("PressureModerate", "moderate pressure for 40 minutes fires after 30",
             (Series(c.MEMORY_PRESSURE_LEVEL, "0 1x40"),), silent_at=(30,), fires_at=31),
    Scenario("PressureModerate", "low pressure stays silent",
             (Series(c.MEMORY_PRESSURE_LEVEL, "0x40"),), silent_at=(35,)),
    Scenario("UsageNearLimit", "96% of the limit for 10 minutes",
             (Series(c.MEMORY_UTILIZATION, "90 96x10"),), silent_at=(5,), fires_at=6, value="96"),
    Scenario("UsageNearLimit", "94% is not near enough",
             (Series(c.MEMORY_UTILIZATION, "94x20"),), silent_at=(15,)),
    Scenario("PredictedToReachLimit", "2% more of the limit every minute",
             (Series(c.MEMORY_UTILIZATION, "10+2x40"),), silent_at=(15,), fires_at=16, value="162"),
    Scenario("PredictedToReachLimit", "flat usage is not predicted to grow",
             (Series(c.MEMORY_UTILIZATION, "80x60"),), silent_at=(45,)),
    Scenario("RequestsRejected", "one rejection per second",
             (Series(c.MEMORY_ADMISSION_REJECTIONS, "0+60x10"),), silent_at=(5,), fires_at=6, value="1"),
    Scenario("RequestsRejected", "no new rejections",
             (Series(c.MEMORY_ADMISSION_REJECTIONS, "5x20"),), silent_at=(15,)),
    Scenario("ContainerOomKill", "one OOM kill",
             (Series(c.MEMORY_CONTAINER_OOM_KILLS, "0 0 1x10"),), silent_at=(1,), fires_at=2, value="1"),
    Scenario("ContainerOomKill", "old OOM kills only",
             (Series(c.MEMORY_CONTAINER_OOM_KILLS, "2x20"),), silent_at=(10,)),
    Scenario("TelemetryAbsent", "telemetry stops after 10 minutes",
             (Series(c.MEMORY_ALLOCATED, "1e8x10"),), silent_at=(20,), fires_at=26, per_job_only=True),
    Scenario("TelemetryAbsent", "telemetry keeps arriving",
             (Series(c.MEMORY_ALLOCATED, "1e8x40"),), silent_at=(30,)),
    Scenario("PoolExhausted", "two borrowers always waiting",
             (Series(c.MEMORY_POOL_PENDING_REQUESTS, "0 2x10", _l(**_POOL)),),
             silent_at=(5,), fires_at=6, value="2", labels=_l(**_POOL)),
    Scenario("PoolExhausted", "a borrow times out every minute",
             (Series(c.MEMORY_POOL_PENDING_REQUESTS, "0x20", _l(**_POOL)),
              Series(c.MEMORY_POOL_TIMEOUTS, "0+1x20", _l(**_POOL))),
             silent_at=(5,), fires_at=6, value="5", labels=_l(**_POOL)),
    Scenario("PoolExhausted", "no waiting, no new timeouts or rejections",
             (Series(c.MEMORY_POOL_PENDING_REQUESTS, "0x20", _l(**_POOL)),
              Series(c.MEMORY_POOL_TIMEOUTS, "3x20", _l(**_POOL)),
              Series(c.MEMORY_POOL_REJECTIONS, "1x20", _l(**_POOL))), silent_at=(15,)),
    Scenario("DbPoolExhausted", "a request always waiting for a connection",
             (Series(c.DB_CLIENT_CONNECTION_PENDING_REQUESTS, "0 1x10", _l(**_DB_POOL)),),
             silent_at=(5,), fires_at=6, value="1", labels=_l(**_DB_POOL)),
    Scenario("DbPoolExhausted", "no waiting, no new timeouts",
             (Series(c.DB_CLIENT_CONNECTION_PENDING_REQUESTS, "0x20", _l(**_DB_POOL)),
              Series(c.DB_CLIENT_CONNECTION_TIMEOUTS, "4x20", _l(**_DB_POOL))), silent_at=(15,)),
    Scenario("PoolLeakedBorrows", "two borrows leaked",
             (Series(c.MEMORY_POOL_LEAKED_BORROWS, "0 0 2x10", _l(**_POOL)),),
             silent_at=(1,), fires_at=2, value="2", labels=_l(**_POOL)),
    Scenario("PoolLeakedBorrows", "no borrows leaked recently",
             (Series(c.MEMORY_POOL_LEAKED_BORROWS, "4x30", _l(**_POOL)),), silent_at=(20,)),
    Scenario("CacheThrashing", "10% hits while evicting half the lookups",
             (Series(c.MEMORY_CACHE_REQUESTS, "0+10x30", _with(_CACHE, **{_HIT: "hit"})),
              Series(c.MEMORY_CACHE_REQUESTS, "0+90x30", _with(_CACHE, **{_HIT: "miss"})),
              Series(c.MEMORY_CACHE_EVICTIONS, "0+50x30", _with(_CACHE, **{_REASON: "size"}))),
             silent_at=(15,), fires_at=16, value="10%", labels=_l(**_CACHE)),
    Scenario("CacheThrashing", "few hits but few evictions: the cache is just cold",
             (Series(c.MEMORY_CACHE_REQUESTS, "0+10x30", _with(_CACHE, **{_HIT: "hit"})),
              Series(c.MEMORY_CACHE_REQUESTS, "0+90x30", _with(_CACHE, **{_HIT: "miss"})),
              Series(c.MEMORY_CACHE_EVICTIONS, "0+5x30", _with(_CACHE, **{_REASON: "memory"}))),
             silent_at=(20,)),
    Scenario("CacheThrashing", "evictions with a high hit ratio, and explicit removals",
             (Series(c.MEMORY_CACHE_REQUESTS, "0+90x30", _with(_CACHE, **{_HIT: "hit"})),
              Series(c.MEMORY_CACHE_REQUESTS, "0+10x30", _with(_CACHE, **{_HIT: "miss"})),
              Series(c.MEMORY_CACHE_EVICTIONS, "0+50x30", _with(_CACHE, **{_REASON: "size"})),
              Series(c.MEMORY_CACHE_REQUESTS, "0+1x30", _l(**{label(c.ATTR_CACHE_NAME): "tokens",
                                                             _HIT: "hit"})),
              Series(c.MEMORY_CACHE_REQUESTS, "0+99x30", _l(**{label(c.ATTR_CACHE_NAME): "tokens",
                                                              _HIT: "miss"})),
              Series(c.MEMORY_CACHE_EVICTIONS, "0+80x30", _l(**{label(c.ATTR_CACHE_NAME): "tokens",
                                                               _REASON: "explicit"}))),
             silent_at=(20,)),
    Scenario("LeakSuspected", "two native suspects for 20 minutes, none of the other kinds",
             (Series(c.MEMORY_LEAK_SUSPECTS, "0 2x20", _l(**{_KIND: "native"})),
              Series(c.MEMORY_LEAK_SUSPECTS, "0x21", _l(**{_KIND: "type"}))),
             silent_at=(15,), fires_at=16, value="2", labels=(( _KIND, "native"),)),
    Scenario("LeakSuspected", "no suspects of any kind",
             (Series(c.MEMORY_LEAK_SUSPECTS, "0x30", _l(**{_KIND: "container"})),
              Series(c.MEMORY_LEAK_SUSPECTS, "0x30", _l(**{_KIND: "floor"}))), silent_at=(20,)),
    Scenario("LeakProcessGrowth", "a sustained growth rate for 15 minutes",
             (Series(c.MEMORY_LEAK_PROCESS_GROWTH_ALERT, "0 1x15", _l(**{_ALERT: "rate"})),
              Series(c.MEMORY_LEAK_PROCESS_GROWTH_ALERT, "0x16", _l(**{_ALERT: "total"}))),
             silent_at=(10,), fires_at=11, value="1", labels=((_ALERT, "rate"),)),
    Scenario("LeakProcessGrowth", "growth that stops after 5 minutes",
             (Series(c.MEMORY_LEAK_PROCESS_GROWTH_ALERT, "0 1x5 0x20", _l(**{_ALERT: "total"})),),
             silent_at=(8, 20)),
    Scenario("GcUncollectableGrowing", "three uncollectable objects a minute",
             (Series(c.CPYTHON_GC_UNCOLLECTABLE_OBJECTS, "0+3x30", _GEN2),),
             silent_at=(15,), fires_at=16, value="48"),
    Scenario("GcUncollectableGrowing", "old uncollectable objects only",
             (Series(c.CPYTHON_GC_UNCOLLECTABLE_OBJECTS, "7x40", _GEN2),),
             silent_at=(35,)),
)
