"""LeakMetrics: every memory.leak.* instrument reads the detector's counters; close() silences."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog as c
from otel_memory.leak.metrics import LeakCounters, LeakMetrics
from tests.conftest import collect, points

MB = 1024 * 1024


def test_the_leak_metrics_export_the_counters_under_catalogue_names(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    counters = LeakCounters(checks=3, suspects=3, suspects_detected=5, growth_bytes_per_s=1.5,
                            last_duration_s=0.25, last_objects_scanned=1000, process_growth_alert=1,
                            alert_reason="rate", native_bytes=70 * MB, malloc_retained_bytes=3 * MB)
    counters.by_kind.update(type=1, native=2)
    counters.detected_by_kind.update(container=4, floor=1)
    metrics = LeakMetrics(meter_provider, counters)
    data = collect(reader)
    expected = {c.MEMORY_LEAK_CHECKS: 3, c.MEMORY_LEAK_GROWTH_RATE: 1.5,
                c.MEMORY_LEAK_CHECK_DURATION: 0.25, c.MEMORY_LEAK_OBJECTS_SCANNED: 1000,
                c.MEMORY_LEAK_NATIVE_SIZE: 70 * MB, c.MEMORY_MALLOC_RETAINED: 3 * MB}
    for spec, value in expected.items():
        assert points(data, spec.name) == [(value, {})], spec.name
        assert data[spec.name].unit == spec.unit
    kind = c.ATTR_LEAK_KIND
    assert sorted(points(data, c.MEMORY_LEAK_SUSPECTS.name), key=str) == sorted([
        (1, {kind: "type"}), (0, {kind: "container"}), (2, {kind: "native"}), (0, {kind: "floor"})],
        key=str)
    assert sorted(points(data, c.MEMORY_LEAK_SUSPECTS_DETECTED.name), key=str) == sorted([
        (0, {kind: "type"}), (4, {kind: "container"}), (0, {kind: "native"}), (1, {kind: "floor"})],
        key=str)
    reason = c.ATTR_LEAK_ALERT_REASON
    assert points(data, c.MEMORY_LEAK_PROCESS_GROWTH_ALERT.name) == [
        (0, {reason: "total"}), (1, {reason: "rate"})]
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
