"""Instruments made from catalogue entries, with callbacks that never raise into the SDK.

Every component (runtime signals, pools, caches, the leak detector) creates its instruments
through an ``InstrumentSet``: observable instruments get a callback that returns plain
(value, attributes) pairs, and closing the set silences them, which is how ``uninstrument()``
removes what ``instrument()`` added (the OpenTelemetry API cannot delete an instrument).

The SDK keeps only the first callbacks of an instrument name on a meter and silently ignores a
second registration, so a set made after another one closed (``uninstrument()`` then
``instrument()`` on the same MeterProvider) would report nothing. Each name therefore gets one
SDK instrument per meter whose callback feeds every live set's callback; close() unplugs them.

A component that reports many signals from one shared reading (the runtime signals) builds
its Observation objects once per collection cycle and hands them over with
``observe_prepared()``: the callback then returns the prepared list as it is, with no per-point
work at collection time. Points without attributes carry ``None`` rather than ``{}``, which
spares the SDK cleaning an empty mapping for each of them.

Example::

    instruments = InstrumentSet(meter_provider.get_meter("otel_memory"))
    instruments.observe(catalog.MEMORY_POOL_SIZE, lambda: [(pool.size, {"pool.name": "db"})])
    wait_time = instruments.histogram(catalog.MEMORY_POOL_WAIT_TIME)
    ...
    instruments.close()
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

from ._version import __version__
from .catalog import SCHEMA_URL, Instrument, MetricSpec
from .errors import error_summary
from .forking import ProcessLock

_log = logging.getLogger("otel_memory")

AttributeValue = str | bool | int | float
Attributes = Mapping[str, AttributeValue]
Points = Iterable[tuple[float | None, Attributes]]

SCOPE_NAME = "otel_memory"

ObservableCallback = Callable[[CallbackOptions], Iterable[Observation]]


class _Fanout:
    """The one SDK callback of an instrument name on a meter: every live set's callback's points."""

    def __init__(self) -> None:
        # Replaced, never mutated (under the registry lock): a collection reads it without a lock.
        self.callbacks: tuple[ObservableCallback, ...] = ()

    def __call__(self, options: CallbackOptions) -> Iterable[Observation]:
        callbacks = self.callbacks
        if len(callbacks) == 1:   # the usual case: one live set
            return callbacks[0](options)
        result: list[Observation] = []
        for callback in callbacks:
            result.extend(callback(options))
        return result


# meter -> instrument name -> its fan-out; meters are held weakly.
_fanouts: weakref.WeakKeyDictionary[Meter, dict[str, _Fanout]] = weakref.WeakKeyDictionary()
_fanouts_lock = ProcessLock()


def get_meter(meter_provider: metrics.MeterProvider | None = None) -> Meter:
    """The otel_memory meter of ``meter_provider``, or of the global provider: our version, and
    the schema URL of the semantic conventions our names follow."""
    provider = meter_provider or metrics.get_meter_provider()
    return provider.get_meter(SCOPE_NAME, __version__, schema_url=SCHEMA_URL)


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
        self._plugged: list[tuple[_Fanout, ObservableCallback]] = []

    @property
    def active(self) -> bool:
        """False once closed: callbacks then report nothing."""
        return self._active

    def close(self) -> None:
        """Silence every observable instrument of this set."""
        self._active = False
        with _fanouts_lock:
            for fanout, callback in self._plugged:
                fanout.callbacks = tuple(c for c in fanout.callbacks if c is not callback)
            self._plugged.clear()

    def observe(self, spec: MetricSpec, points: Callable[[], Points]) -> None:
        """Create the observable instrument of ``spec`` fed by ``points()``."""
        self._plug(spec, self._callback(spec, points))

    def observe_prepared(self, spec: MetricSpec,
                         observations: Callable[[CallbackOptions], Sequence[Observation]]) -> None:
        """Create the observable instrument of ``spec`` fed by ready-made Observations.

        ``observations(options)`` returns the Observation objects to report as they are (no
        value may be None): for signals whose points are built once per collection cycle. It
        gets the SDK's CallbackOptions, one object per collection, which tells a callback that
        the collection it serves is the one it prepared for.
        """
        self._plug(spec, self._prepared_callback(spec, observations))

    def warn_once(self, spec: MetricSpec, error: BaseException) -> None:
        """Log that ``spec`` could not be observed, once per metric (type and place only)."""
        if spec.name not in self._warned:
            self._warned.add(spec.name)
            _log.warning("otel_memory: %s could not be observed: %s",
                         spec.name, error_summary(error))

    def _plug(self, spec: MetricSpec, callback: ObservableCallback) -> None:
        if spec.instrument is Instrument.HISTOGRAM:
            raise ValueError(f"{spec.name} is a histogram; use histogram(), not observe()")
        with _fanouts_lock:
            if not self._active:
                return
            by_name = _fanouts.setdefault(self._meter, {})
            fanout = by_name.get(spec.name)
            if fanout is None:
                fanout = by_name[spec.name] = _Fanout()
                factory: Callable[..., Any] = {
                    Instrument.OBSERVABLE_GAUGE: self._meter.create_observable_gauge,
                    Instrument.OBSERVABLE_COUNTER: self._meter.create_observable_counter,
                    Instrument.OBSERVABLE_UP_DOWN_COUNTER:
                        self._meter.create_observable_up_down_counter,
                }[spec.instrument]
                factory(spec.name, callbacks=[fanout], unit=spec.unit,
                        description=spec.description)
            fanout.callbacks = (*fanout.callbacks, callback)
            self._plugged.append((fanout, callback))

    def histogram(self, spec: MetricSpec) -> Histogram:
        """Create the histogram of ``spec`` with its bucket advice."""
        if spec.instrument is not Instrument.HISTOGRAM:
            raise ValueError(f"{spec.name} is {spec.instrument.value}, not a histogram")
        return self._meter.create_histogram(
            spec.name, unit=spec.unit, description=spec.description,
            explicit_bucket_boundaries_advisory=list(spec.buckets) if spec.buckets else None)

    def _callback(self, spec: MetricSpec, points: Callable[[], Points]) -> ObservableCallback:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            if not self._active:
                return []
            try:
                # ``attributes or None``: an empty mapping would cost the SDK a cleaning pass.
                return [Observation(value, attributes or None) for value, attributes in points()
                        if value is not None]
            except Exception as error:  # noqa: BLE001 - a callback must never raise into the SDK
                self.warn_once(spec, error)
                return []

        return callback

    def _prepared_callback(self, spec: MetricSpec,
                           observations: Callable[[CallbackOptions], Sequence[Observation]]
                           ) -> ObservableCallback:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            if not self._active:
                return ()
            try:
                return observations(options)
            except Exception as error:  # noqa: BLE001 - a callback must never raise into the SDK
                self.warn_once(spec, error)
                return ()

        return callback
