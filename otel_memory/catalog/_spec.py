"""What a catalogue entry is: instrument kinds, capability groups, ``MetricSpec`` and buckets.

Example::

    spec = MetricSpec("memory.peak", Instrument.OBSERVABLE_GAUGE, "By", "Peak RSS.", Group.PROCESS)
    spec.prometheus_name   # 'memory_peak_bytes'
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

#: The semantic-conventions version our names follow (container.memory.working_set came in
#: 1.38.0); the otel_memory meter carries it as its schema_url.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.38.0"

#: The peer that reports some semantic-convention families too (see MetricSpec.shared_with).
SYSTEM_METRICS = "opentelemetry-instrumentation-system-metrics"

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
    alias: str | None = None
    """Another Prometheus name for this metric, provided by a recording rule in the generated
    rule file (the original design's name where the exporter's name could not be it)."""
    shared_with: str | None = None
    """An instrumentation that reports this family too; left to it when it runs beside us."""

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
    def promtool_problem(self) -> str | None:
        """What ``promtool check metrics`` says about the exported name, or None when it is clean.

        Only a semantic-convention name may have a problem (``db.client.connection.count``: an
        UpDownCounter ending in ``_count``); docs/metrics.md lists them.
        """
        name = self.prometheus_name
        if self.instrument is not Instrument.OBSERVABLE_COUNTER and name.endswith("_total"):
            return 'non-counter metrics should not have "_total" suffix'
        if self.instrument is not Instrument.HISTOGRAM:
            for suffix in ("_count", "_sum", "_bucket"):
                if name.endswith(suffix):
                    return f'non-histogram and non-summary metrics should not have "{suffix}" suffix'
        return None

    @property
    def prometheus_labels(self) -> tuple[str, ...]:
        """The attribute keys as Prometheus label names."""
        return tuple(re.sub(r"[^a-zA-Z0-9]+", "_", key) for key in self.attributes)
