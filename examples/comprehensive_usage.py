"""The whole system in one script: manager, pool, cache, pressure response, leak detection, health.

It follows the original design's quick start: initialize a MemoryManager, create a pool for an
expensive resource and borrow from it, cache with a memory budget, watch the pressure level and
the trend, let the leak detector find a deliberate leak, and print the health JSON. Metrics are
read back from an in-memory reader so you can see what an exporter would send; set
OTEL_EXPORTER_OTLP_ENDPOINT to send them to a collector as well.

Run: python examples/comprehensive_usage.py        (about a second)
"""

from __future__ import annotations

import json
import os

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_memory import (
    MemoryLimitConfig,
    MemoryManagementConfig,
    MemoryManager,
    MemoryPressureManager,
    SmartCache,
    catalog,
)
from otel_memory.web import health_status

MB = 1024 * 1024


class DatabaseConnection:
    """Stands in for an expensive resource (a real one: otel_memory.integration)."""

    def query(self, sql: str) -> list[dict[str, int]]:
        return [{"id": 1}] if sql.startswith("SELECT") else []


class Session:
    """What the deliberate leak accumulates."""

    def __init__(self) -> None:
        self.payload = bytes(512)


LEAKED: list[Session] = []


def otlp(meter_readers: list[MetricReader], tracer_provider: TracerProvider) -> None:
    """Export metrics and the leak-check spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    meter_readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))


def exported(reader: InMemoryMetricReader) -> dict[str, float]:
    """Metric name -> sum of its points (histograms: count) from one collection."""
    totals: dict[str, float] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                totals[metric.name] = sum(
                    float(getattr(point, "value", getattr(point, "count", 0)))
                    for point in metric.data.data_points)
    return totals


def main() -> None:
    reader = InMemoryMetricReader()
    readers: list[MetricReader] = [reader]
    tracer_provider = TracerProvider()
    otlp(readers, tracer_provider)
    meter_provider = MeterProvider(metric_readers=readers)
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=4096, monitoring_interval_ms=200),
        enable_leak_detection=True, leak_detection_interval_s=3600)
    manager = MemoryManager(config, meter_provider=meter_provider, tracer_provider=tracer_provider)
    manager.initialize()
    pressure = MemoryPressureManager(manager)
    pressure.start()
    try:
        # Object pooling: borrow, use, and the object goes back when the block ends.
        manager.create_pool("database_connections", DatabaseConnection, 20)
        connection = manager.get_from_pool("database_connections", timeout=1.0)
        assert connection is not None
        with connection:
            rows = connection.get().query("SELECT * FROM users")
        print(f"pool: query returned {len(rows)} row(s); borrowed objects go back on scope exit")

        # Memory-aware caching: bounded by entries and bytes, shrinks under pressure.
        cache: SmartCache[str, bytes] = SmartCache(manager, 1000, 50, 300, name="users")
        for user in range(200):
            cache.insert(f"user:{user}", bytes(1024))
        hit = cache.get("user:123")
        print(f"cache: {len(cache)} entries, hit for user:123 = {hit is not None}")

        # Leak detection: a list that only grows; the detector ranks it after sustained growth.
        detector = manager.leak_detector
        report = None
        checks = detector.policy.warmup_checks + detector.policy.min_growth_checks + 1
        for _ in range(checks):
            LEAKED.extend(Session() for _ in range(5000))
            report = detector.check()
        suspects = [suspect.type_name for suspect in report.suspects] if report else []
        print(f"leak detection: suspects after {checks} checks: {suspects[:3]}")

        # Statistics, pressure, trend and the health endpoint's JSON.
        manager.check_pressure()
        stats = manager.get_memory_stats()
        trend = manager.get_memory_trend()
        print(f"memory usage: {stats.allocated_bytes // MB} MB, peak {stats.peak_usage_bytes // MB} MB, "
              f"limit {stats.limit_bytes // MB} MB ({stats.limit_source}), "
              f"pressure {manager.get_memory_pressure().title}, trend {trend.trend.name.lower()}")
        print("health:", json.dumps(health_status(manager)))

        values = exported(reader)
        for spec in (catalog.MEMORY_ALLOCATED, catalog.MEMORY_PRESSURE_LEVEL, catalog.MEMORY_POOL_SIZE,
                     catalog.MEMORY_CACHE_ENTRIES, catalog.MEMORY_LEAK_SUSPECTS):
            print(f"metric {spec.prometheus_name} = {values.get(spec.name, 0):.0f}")
        assert values.get(catalog.MEMORY_POOL_SIZE.name, 0) >= 1
        assert values.get(catalog.MEMORY_CACHE_ENTRIES.name, 0) == len(cache)
        assert "Session" in " ".join(suspects), suspects
    finally:
        pressure.stop()
        manager.shutdown()
        meter_provider.shutdown()
        tracer_provider.shutdown()


if __name__ == "__main__":
    main()
