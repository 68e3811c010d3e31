"""Responding to memory pressure: forced GC with RSS given back, and refusing work at CRITICAL.

The thresholds are set just above this process's memory, then the script makes garbage that
only the cyclic GC can free. The MemoryPressureManager (thread mode) sees HIGH, runs
gc.collect() and malloc_trim(0), and the metrics show what came back. A guarded function is
then refused while pressure is critical.

Run: python examples/pressure_response.py        (under a second)
"""

from __future__ import annotations

import gc
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog, probes
from otel_memory.config import MB, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.errors import MemoryPressureRejected
from otel_memory.manager import MemoryManager
from otel_memory.response import MemoryPressureManager, PressurePolicy, memory_guard


class Record:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.itself = self  # a reference cycle: only the cyclic GC frees it


def rss_mb() -> float:
    return probes.read_statm("/proc/self/statm")[0] / MB


def exported(reader: InMemoryMetricReader, name: str) -> dict[str, float]:
    data = reader.get_metrics_data()
    values: dict[str, float] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        action = str((point.attributes or {}).get(catalog.ATTR_PRESSURE_ACTION))
                        values[action] = point.value  # type: ignore[union-attr]
    return values


def main() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    base = rss_mb()
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(
            max_heap_mb=base + 300, warning_threshold_mb=base + 30, gc_pressure_threshold_mb=base + 60,
            critical_threshold_mb=base + 200, monitoring_interval_ms=50),
        enable_leak_detection=False, gc_min_interval_s=5.0)
    manager = MemoryManager(config, meter_provider=provider)
    manager.initialize()
    pressure = MemoryPressureManager(manager, PressurePolicy(), interval_s=0.05)

    @memory_guard(manager)
    def expensive_report() -> str:
        return "report"

    with pressure:  # thread mode
        gc.disable()  # let the garbage wait for the pressure response
        try:
            for i in range(25_000):
                Record(bytes([i % 251]) * 4000)
            print(f"garbage made: RSS {rss_mb() - base:+.0f} MB over the start")
            deadline = time.monotonic() + 5
            while "malloc_trim" not in manager.actions and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            gc.enable()
        print(f"after the HIGH-level response: RSS {rss_mb() - base:+.0f} MB over the start")
        print("actions:", exported(reader, catalog.MEMORY_PRESSURE_ACTIONS.name))
        reclaimed = sum(exported(reader, catalog.MEMORY_PRESSURE_RECLAIMED.name).values())
        print(f"reclaimed: {reclaimed / MB:.0f} MB")

        ballast = b"\x01" * (220 * MB)  # now past the critical threshold
        level = manager.check_pressure()
        print("pressure:", level.title)
        try:
            expensive_report()
        except MemoryPressureRejected as error:
            print("refused:", error)
        del ballast
        print("pressure after freeing:", manager.check_pressure().title, "->", expensive_report())
    manager.shutdown()
    provider.shutdown()


if __name__ == "__main__":
    main()
