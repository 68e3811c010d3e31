"""Instruments made from catalogue entries, with callbacks that never raise into the SDK.

Every component (runtime signals, pools, caches, the leak detector) creates its instruments
through an ``InstrumentSet``: observable instruments get a callback that returns plain
(value, attributes) pairs, and closing the set silences them, which is how ``uninstrument()``
removes what ``instrument()`` added (the OpenTelemetry API cannot delete an instrument).

Example::

    instruments = InstrumentSet(meter_provider.get_meter("otel_memory"))
    instruments.observe(catalog.MEMORY_POOL_SIZE, lambda: [(pool.size, {"pool.name": "db"})])
    wait_time = instruments.histogram(catalog.MEMORY_POOL_WAIT_TIME)
    ...
    instruments.close()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

from .catalog import Instrument, MetricSpec

_log = logging.getLogger("otel_memory")

AttributeValue = str | bool | int | float
Attributes = Mapping[str, AttributeValue]
Points = Iterable[tuple[float | None, Attributes]]

SCOPE_NAME = "otel_memory"


def get_meter(meter_provider: metrics.MeterProvider | None = None) -> Meter:
    """The otel_memory meter of ``meter_provider``, or of the global provider."""
    provider = meter_provider or metrics.get_meter_provider()
    return provider.get_meter(SCOPE_NAME, _version())


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("otel-memory")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0"


class InstrumentSet:
    """Instruments of one component, made from catalogue entries, silenced together by close().

    Example::

        instruments = InstrumentSet(get_meter(provider))
        instruments.observe(catalog.MEMORY_PEAK, lambda: [(sample.peak, {})])
    """

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._active = True
        self._warned: set[str] = set()

    @property
    def active(self) -> bool:
        """False once closed: callbacks then report nothing."""
        return self._active

    def close(self) -> None:
        """Silence every observable instrument of this set."""
        self._active = False

    def observe(self, spec: MetricSpec, points: Callable[[], Points]) -> None:
        """Create the observable instrument of ``spec`` fed by ``points()``."""
        if spec.instrument is Instrument.HISTOGRAM:
            raise ValueError(f"{spec.name} is a histogram; use histogram(), not observe()")
        factory: Callable[..., Any] = {
            Instrument.OBSERVABLE_GAUGE: self._meter.create_observable_gauge,
            Instrument.OBSERVABLE_COUNTER: self._meter.create_observable_counter,
            Instrument.OBSERVABLE_UP_DOWN_COUNTER: self._meter.create_observable_up_down_counter,
        }[spec.instrument]
        factory(spec.name, callbacks=[self._callback(spec, points)], unit=spec.unit,
                description=spec.description)

    def histogram(self, spec: MetricSpec) -> Histogram:
        """Create the histogram of ``spec`` with its bucket advice."""
        if spec.instrument is not Instrument.HISTOGRAM:
            raise ValueError(f"{spec.name} is {spec.instrument.value}, not a histogram")
        return self._meter.create_histogram(
            spec.name, unit=spec.unit, description=spec.description,
            explicit_bucket_boundaries_advisory=list(spec.buckets) if spec.buckets else None)

    def _callback(self, spec: MetricSpec, points: Callable[[], Points]
                  ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            if not self._active:
                return []
            try:
                return [Observation(value, attributes) for value, attributes in points()
                        if value is not None]
            except Exception as error:  # noqa: BLE001 - a callback must never raise into the SDK
                if spec.name not in self._warned:
                    self._warned.add(spec.name)
                    _log.warning("otel_memory: %s could not be observed: %s: %s",
                                 spec.name, type(error).__name__, error)
                return []

        return callback
