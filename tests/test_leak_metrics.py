"""LeakMetrics: every memory.leak.* instrument reads the detector's counters; close() silences."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog as c
from otel_memory.leak.metrics import LeakCounters, LeakMetrics
from tests.conftest import collect, points


def test_the_leak_metrics_export_the_counters_under_catalogue_names(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    counters = LeakCounters(checks=3, suspects=2, suspects_detected=5, growth_bytes_per_s=1.5,
                            last_duration_s=0.25, last_objects_scanned=1000, process_growth_alert=1)
    metrics = LeakMetrics(meter_provider, counters)
    data = collect(reader)
    expected = {c.MEMORY_LEAK_CHECKS: 3, c.MEMORY_LEAK_SUSPECTS: 2, c.MEMORY_LEAK_SUSPECTS_DETECTED: 5,
                c.MEMORY_LEAK_GROWTH_RATE: 1.5, c.MEMORY_LEAK_CHECK_DURATION: 0.25,
                c.MEMORY_LEAK_OBJECTS_SCANNED: 1000, c.MEMORY_LEAK_PROCESS_GROWTH_ALERT: 1}
    for spec, value in expected.items():
        assert points(data, spec.name) == [(value, {})], spec.name
        assert data[spec.name].unit == spec.unit
    counters.checks = 4
    assert points(collect(reader), c.MEMORY_LEAK_CHECKS.name) == [(4, {})]
    metrics.close()
    assert points(collect(reader), c.MEMORY_LEAK_CHECKS.name) == []


def test_a_check_not_yet_taken_reports_no_duration(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    LeakMetrics(meter_provider, LeakCounters())
    data = collect(reader)
    assert points(data, c.MEMORY_LEAK_CHECK_DURATION.name) == []
    assert points(data, c.MEMORY_LEAK_CHECKS.name) == [(0, {})]
