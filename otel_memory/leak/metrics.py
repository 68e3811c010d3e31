"""The leak detector's metrics: observable instruments over the numbers of its last check.

The trend gauges (``memory.trend.*``) belong to the MemoryManager's runtime metrics; these are
the ``memory.leak.*`` ones.

Example::

    metrics = LeakMetrics(meter_provider, detector.counters)
    ...
    metrics.close()
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from opentelemetry import metrics

from .. import catalog as c
from ..instruments import InstrumentSet, Points, get_meter

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

    def reset(self) -> None:
        """Back to zero, in place (the instruments keep reading this object): a forked child
        reports its own checks, not its parent's."""
        for field in fields(self):
            setattr(self, field.name, field.default)


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

        observe(c.MEMORY_LEAK_SUSPECTS, lambda: one(counters.suspects))
        observe(c.MEMORY_LEAK_SUSPECTS_DETECTED, lambda: one(counters.suspects_detected))
        observe(c.MEMORY_LEAK_GROWTH_RATE, lambda: one(counters.growth_bytes_per_s))
        observe(c.MEMORY_LEAK_CHECKS, lambda: one(counters.checks))
        observe(c.MEMORY_LEAK_CHECK_DURATION, lambda: one(counters.last_duration_s))
        observe(c.MEMORY_LEAK_OBJECTS_SCANNED, lambda: one(counters.last_objects_scanned))
        observe(c.MEMORY_LEAK_PROCESS_GROWTH_ALERT, lambda: one(counters.process_growth_alert))

    def close(self) -> None:
        """Silence the instruments."""
        self._set.close()
