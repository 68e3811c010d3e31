"""The leak detector's metrics: observable instruments over the numbers of its last check.

The trend gauges (``memory.trend.*``) belong to the MemoryManager's runtime metrics; these are
the ``memory.leak.*`` ones.

Example::

    metrics = LeakMetrics(meter_provider, detector.counters)
    ...
    metrics.close()
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from opentelemetry import metrics

from .. import catalog as c
from ..instruments import InstrumentSet, Points, get_meter
from .report import KINDS

ALERT_REASONS = ("total", "rate")

_NO_ATTRIBUTES: dict[str, str] = {}


@dataclass
class LeakCounters:
    """Plain numbers the detector updates after each check, read by the instruments.

    Example::

        counters = LeakCounters()
        counters.checks += 1
    """

    checks: int = 0
    suspects: int = 0
    suspects_detected: int = 0
    growth_bytes_per_s: float = 0.0
    last_duration_s: float | None = None
    last_objects_scanned: int | None = None
    process_growth_alert: int = 0
    alert_reason: str | None = None
    native_bytes: int | None = None
    malloc_retained_bytes: int | None = None
    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    detected_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def reset(self) -> None:
        """Back to zero, in place (the instruments keep reading this object): a forked child
        reports its own checks, not its parent's."""
        for item in fields(self):
            if isinstance(getattr(self, item.name), dict):
                getattr(self, item.name).update(dict.fromkeys(KINDS, 0))
            else:
                setattr(self, item.name, item.default)


class LeakMetrics:
    """Registers the ``memory.leak.*`` instruments over ``counters``.

    Example::

        LeakMetrics(None, LeakCounters()).close()    # None: the global MeterProvider
    """

    def __init__(self, meter_provider: metrics.MeterProvider | None, counters: LeakCounters) -> None:
        self._set = InstrumentSet(get_meter(meter_provider))
        observe = self._set.observe

        def one(value: float | None) -> Points:
            return [(value, _NO_ATTRIBUTES)]

        kinds = [(kind, {c.ATTR_LEAK_KIND: kind}) for kind in KINDS]
        reasons = [(reason, {c.ATTR_LEAK_ALERT_REASON: reason}) for reason in ALERT_REASONS]

        def by_kind(values: dict[str, int]) -> Points:
            return [(values[kind], attributes) for kind, attributes in kinds]

        def alert() -> Points:
            on, reason = counters.process_growth_alert, counters.alert_reason
            return [(int(bool(on) and reason == name), attributes) for name, attributes in reasons]

        observe(c.MEMORY_LEAK_SUSPECTS, lambda: by_kind(counters.by_kind))
        observe(c.MEMORY_LEAK_SUSPECTS_DETECTED, lambda: by_kind(counters.detected_by_kind))
        observe(c.MEMORY_LEAK_GROWTH_RATE, lambda: one(counters.growth_bytes_per_s))
        observe(c.MEMORY_LEAK_CHECKS, lambda: one(counters.checks))
        observe(c.MEMORY_LEAK_CHECK_DURATION, lambda: one(counters.last_duration_s))
        observe(c.MEMORY_LEAK_OBJECTS_SCANNED, lambda: one(counters.last_objects_scanned))
        observe(c.MEMORY_LEAK_PROCESS_GROWTH_ALERT, alert)
        observe(c.MEMORY_LEAK_NATIVE_SIZE, lambda: one(counters.native_bytes))
        observe(c.MEMORY_MALLOC_RETAINED, lambda: one(counters.malloc_retained_bytes))

    def close(self) -> None:
        """Silence the instruments."""
        self._set.close()
