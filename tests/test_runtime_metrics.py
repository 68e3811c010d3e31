"""The runtime signals through a real SDK MeterProvider: values, units, attributes, buckets."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    HistogramDataPoint,
    InMemoryMetricReader,
    Sum,
)

from otel_memory import catalog
from otel_memory.catalog import Instrument
from otel_memory.config import MB, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.gcwatch import GcPauseWatch
from otel_memory.limits import EffectiveLimit
from otel_memory.manager import MemoryManager
from otel_memory.pressure import MemoryPressure, Thresholds
from otel_memory.runtime_metrics import RuntimeMetrics
from otel_memory.sampler import MemorySample, Sampler
from otel_memory.trend import TrendTracker
from tests.conftest import cgroup_v2_container, collect, points

CONTAINER_ONLY = ("memory.container.", "container.memory.", "memory.psi.")
ALWAYS = [spec for spec in catalog.in_group(catalog.Group.PROCESS, catalog.Group.GC, catalog.Group.PRESSURE)
          if spec.opt_in is None and not spec.name.startswith(CONTAINER_ONLY)]


@pytest.fixture
def manager(meter_provider: MeterProvider) -> Iterator[MemoryManager]:
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=64_000, monitoring_interval_ms=60_000),
        enable_leak_detection=False)
    manager = MemoryManager(config, meter_provider=meter_provider)
    manager.initialize()
    yield manager
    manager.shutdown()


def _value(metrics: dict[str, Any], spec: catalog.MetricSpec, **attributes: Any) -> Any:
    for value, point_attributes in points(metrics, spec.name):
        if all(point_attributes.get(k) == v for k, v in attributes.items()):
            return value
    raise AssertionError(f"no point of {spec.name} with {attributes}")


def test_values_match_psutil(manager: MemoryManager, reader: InMemoryMetricReader) -> None:
    metrics = collect(reader)
    process = psutil.Process()
    info = process.memory_info()
    tolerance = 16 * MB
    assert abs(_value(metrics, catalog.PROCESS_MEMORY_USAGE) - info.rss) < tolerance
    assert abs(_value(metrics, catalog.MEMORY_ALLOCATED) - info.rss) < tolerance
    assert abs(_value(metrics, catalog.PROCESS_MEMORY_VIRTUAL) - info.vms) < tolerance
    assert _value(metrics, catalog.MEMORY_PEAK) >= _value(metrics, catalog.MEMORY_ALLOCATED)
    assert _value(metrics, catalog.PROCESS_PAGING_FAULTS, **{catalog.ATTR_PAGING_FAULT_TYPE: "minor"}) > 0
    assert _value(metrics, catalog.MEMORY_LIMIT, **{catalog.ATTR_LIMIT_SOURCE: "config"}) == 64_000 * MB
    utilization = _value(metrics, catalog.MEMORY_UTILIZATION)
    assert utilization == pytest.approx(100 * info.rss / (64_000 * MB), abs=0.05)
    assert _value(metrics, catalog.MEMORY_THRESHOLD, **{catalog.ATTR_THRESHOLD_KIND: "critical"}) == int(
        64_000 * MB * 0.875)
    assert _value(metrics, catalog.MEMORY_PRESSURE_LEVEL) == 0
    assert abs(_value(metrics, catalog.MEMORY_ALLOCATED_BLOCKS) - sys.getallocatedblocks()) < 50_000
    stats = gc.get_stats()
    for generation in range(3):
        reported = _value(metrics, catalog.CPYTHON_GC_COLLECTIONS,
                          **{catalog.ATTR_GC_GENERATION: generation})
        assert 0 <= stats[generation]["collections"] - reported <= 50


def test_every_always_on_metric_has_its_unit_kind_and_attributes(
        manager: MemoryManager, reader: InMemoryMetricReader) -> None:
    gc.collect()
    manager.check_pressure()     # drains the pause into the histogram
    metrics = collect(reader)
    for spec in ALWAYS:
        metric = metrics.get(spec.name)
        assert metric is not None, f"{spec.name} was not exported"
        assert metric.unit == spec.unit and metric.description == spec.description
        data = metric.data
        if spec.instrument is Instrument.OBSERVABLE_GAUGE:
            assert isinstance(data, Gauge)
        elif spec.instrument is Instrument.HISTOGRAM:
            assert all(isinstance(p, HistogramDataPoint) for p in data.data_points)
        else:
            assert isinstance(data, Sum)
            assert data.is_monotonic == (spec.instrument is Instrument.OBSERVABLE_COUNTER)
        for point in data.data_points:
            assert set(point.attributes or {}) == set(spec.attributes), spec.name


def test_gc_pause_histogram_is_in_seconds_with_fitting_buckets(
        manager: MemoryManager, reader: InMemoryMetricReader) -> None:
    manager.gc_watch.drain()
    gc.collect()
    gc.collect()
    manager.check_pressure()
    metric = collect(reader)[catalog.MEMORY_GC_PAUSE_DURATION.name]
    assert metric.unit == "s"
    full = [p for p in metric.data.data_points if p.attributes == {catalog.ATTR_GC_GENERATION: 2}]
    assert len(full) == 1
    point = full[0]
    assert tuple(point.explicit_bounds) == catalog.PAUSE_BUCKETS_S
    assert point.count >= 2
    assert 0 < point.sum < 5   # seconds, not milliseconds
    # A full collection of this small heap takes well under a second: not all in the last bucket.
    assert sum(point.bucket_counts[:-2]) >= 1
    pause_time = _value(collect(reader), catalog.MEMORY_GC_PAUSE_TIME, **{catalog.ATTR_GC_GENERATION: 2})
    assert pause_time >= point.sum * 0.99


def test_opt_in_signals(meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000),
        enable_leak_detection=False, enable_uss=True, enable_tracemalloc=True)
    import tracemalloc

    was_tracing = tracemalloc.is_tracing()
    with MemoryManager(config, meter_provider=meter_provider):
        time.sleep(0.6)
        metrics = collect(reader)
        assert 0 < _value(metrics, catalog.MEMORY_USS) <= _value(metrics, catalog.MEMORY_ALLOCATED) * 1.1
        assert _value(metrics, catalog.MEMORY_TRACEMALLOC_PEAK) >= _value(
            metrics, catalog.MEMORY_TRACEMALLOC_CURRENT) > 0
    # shutdown() stops the tracing initialize() started (and only that).
    assert tracemalloc.is_tracing() == was_tracing
    if was_tracing:
        return
    tracemalloc.start()
    with MemoryManager(config, meter_provider=meter_provider):
        pass
    assert tracemalloc.is_tracing()
    tracemalloc.stop()


def test_opt_in_signals_are_absent_by_default(manager: MemoryManager, reader: InMemoryMetricReader) -> None:
    metrics = collect(reader)
    for spec in catalog.ALL:
        if spec.opt_in:
            assert spec.name not in metrics


def test_counts_are_exported_with_their_attributes(manager: MemoryManager,
                                                   reader: InMemoryMetricReader) -> None:
    manager.record_action("gc_collect", 2 * MB)
    metrics = collect(reader)
    action = {catalog.ATTR_PRESSURE_ACTION: "gc_collect"}
    assert _value(metrics, catalog.MEMORY_PRESSURE_ACTIONS, **action) == 1
    assert _value(metrics, catalog.MEMORY_PRESSURE_RECLAIMED, **action) == 2 * MB
    transitions = points(metrics, catalog.MEMORY_PRESSURE_TRANSITIONS.name)
    states = {attributes[catalog.ATTR_PRESSURE_STATE] for _value, attributes in transitions}
    assert states == {"low", "moderate", "high", "critical"}


def test_shutdown_silences_every_instrument(manager: MemoryManager, reader: InMemoryMetricReader) -> None:
    assert collect(reader)
    manager.shutdown()
    metrics = collect(reader)
    observable = [spec for spec in ALWAYS if spec.instrument is not Instrument.HISTOGRAM]
    assert not any(points(metrics, spec.name) for spec in observable)


def test_a_raising_signal_is_dropped_with_one_warning(
        manager: MemoryManager, reader: InMemoryMetricReader, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> list[Any]:
        raise OSError("thresholds unreadable")

    monkeypatch.setattr(type(manager), "thresholds", property(lambda self: broken()), raising=False)
    with caplog.at_level("WARNING", logger="otel_memory"):
        first, second = collect(reader), collect(reader)
    assert catalog.MEMORY_THRESHOLD.name not in first and catalog.MEMORY_THRESHOLD.name not in second
    assert catalog.MEMORY_ALLOCATED.name in second
    warnings = [r.getMessage() for r in caplog.records if catalog.MEMORY_THRESHOLD.name in r.getMessage()]
    assert len(warnings) == 1 and "OSError" in warnings[0]


def _driven(tmp_path: Path, meter_provider: MeterProvider) -> tuple[MemoryManager, Callable[[int], None]]:
    """A started manager whose RSS the test writes (a proc root with its own statm)."""
    statm = tmp_path / "proc" / "self" / "statm"
    statm.parent.mkdir(parents=True)
    page = os.sysconf("SC_PAGE_SIZE")

    def rss_mb(megabytes: int) -> None:
        pages = megabytes * MB // page
        statm.write_text(f"{pages * 2} {pages} 100 10 0 {pages} 0\n")

    rss_mb(100)
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=1000, monitoring_interval_ms=600_000),
        enable_leak_detection=False)
    manager = MemoryManager(config, meter_provider=meter_provider, proc_root=tmp_path / "proc",
                            cgroup_root=tmp_path / "no-cgroup")
    manager.initialize()
    return manager, rss_mb


def test_a_tick_is_reported_by_the_next_collection(
        tmp_path: Path, meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    manager, rss_mb = _driven(tmp_path, meter_provider)
    try:
        manager.sampler._max_age_s = 3600.0   # no cycle ends by age: only the tick starts one
        metrics = collect(reader)
        assert _value(metrics, catalog.PROCESS_MEMORY_USAGE) == 100 * MB
        assert _value(metrics, catalog.MEMORY_PRESSURE_LEVEL) == 0
        rss_mb(950)
        assert collect(reader) and _value(collect(reader), catalog.PROCESS_MEMORY_USAGE) == 100 * MB
        manager.check_pressure()
        metrics = collect(reader)
        assert _value(metrics, catalog.PROCESS_MEMORY_USAGE) == 950 * MB
        assert _value(metrics, catalog.MEMORY_ALLOCATED) == 950 * MB
        assert _value(metrics, catalog.MEMORY_UTILIZATION) == pytest.approx(95.0)
        assert _value(metrics, catalog.MEMORY_PRESSURE_LEVEL) == 3
        assert _value(metrics, catalog.MEMORY_PRESSURE_TRANSITIONS,
                      **{catalog.ATTR_PRESSURE_STATE: "critical"}) == 1
        assert _value(metrics, catalog.MEMORY_TREND_AVERAGE) > 100 * MB
    finally:
        manager.shutdown()


def test_signals_are_built_once_per_sample_not_once_per_callback(
        manager: MemoryManager, reader: InMemoryMetricReader, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    thresholds = manager.thresholds

    def counted(_self: MemoryManager) -> Any:
        reads.append(1)
        return thresholds

    monkeypatch.setattr(type(manager), "thresholds", property(counted), raising=False)
    manager.sampler._max_age_s = 3600.0
    manager.sampler.invalidate()
    first = collect(reader)
    assert len(first) >= 15 and len(reads) == 1
    second = collect(reader)     # the same sample: the built points are handed over again
    assert len(reads) == 1
    assert _value(second, catalog.MEMORY_THRESHOLD, **{catalog.ATTR_THRESHOLD_KIND: "high"}) == (
        thresholds.high)
    manager.sampler.invalidate()  # a new cycle: built again, once
    collect(reader)
    assert len(reads) == 2
    # The end of a monitoring tick (its pauses recorded) starts a new build from the same
    # sample: the level and trend of that tick are reported even while the sample is fresh.
    manager._instruments.record_gc_pauses([])
    collect(reader)
    assert len(reads) == 3


def test_the_shared_sample_is_asked_for_once_per_collection_not_once_per_callback(
        manager: MemoryManager, reader: InMemoryMetricReader, monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK hands every callback of one collection the same CallbackOptions object when the
    # collection may take longer than 10 s, as PeriodicExportingMetricReader's export loop does
    # (OTEL_METRIC_EXPORT_TIMEOUT, 30 s); with less, one per instrument, and each callback asks.
    asked: list[float | None] = []
    current = manager.sampler.current

    def counted(max_age_s: float | None = None) -> MemorySample:
        asked.append(max_age_s)
        return current(max_age_s)

    monkeypatch.setattr(manager.sampler, "current", counted)
    reader.collect(timeout_millis=30_000)
    assert len(asked) == 1
    manager.sampler.invalidate()
    reader.collect(timeout_millis=30_000)
    assert len(asked) == 2
    sample = manager.sampler.current()
    data = collect(reader)      # the default 10 s: every callback asks, and gets the same sample
    assert len(data) >= 15 and len(asked) >= 15
    assert _value(data, catalog.PROCESS_MEMORY_USAGE) == sample.rss



class FixedSource:
    """A RuntimeSource with no manager: a limit, thresholds and counters the test sets."""

    def __init__(self, meter_provider: MeterProvider) -> None:
        self.limit = EffectiveLimit(bytes=4096 * MB, source="config")
        self.sampler = Sampler(self.limit)
        self.config = MemoryManagementConfig()
        self.thresholds = Thresholds(moderate=3072 * MB, high=3200 * MB, critical=3584 * MB)
        self.trend = TrendTracker(window_s=60.0)
        self.gc_watch = GcPauseWatch()
        self.transitions = {level: 0 for level in MemoryPressure}
        self.transitions[MemoryPressure.HIGH] = 2
        self.actions = {"gc_collect": 3}
        self.reclaimed: dict[str, int] = {}
        self.rejections: dict[str, int] = {}
        self.meter_provider: MeterProvider | None = meter_provider
        self.last_tick = 0

    def usage_of(self, sample: MemorySample) -> int:
        return sample.rss or 0

    def get_memory_pressure(self) -> MemoryPressure:
        return MemoryPressure.MODERATE


def test_the_runtime_metrics_are_built_from_any_source_without_a_manager(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    source = FixedSource(meter_provider)
    metrics = RuntimeMetrics(source)
    data = collect(reader)
    assert points(data, catalog.MEMORY_LIMIT.name) == [(4096 * MB, {catalog.ATTR_LIMIT_SOURCE: "config"})]
    assert points(data, catalog.MEMORY_PRESSURE_LEVEL.name) == [(int(MemoryPressure.MODERATE), {})]
    assert (2, {catalog.ATTR_PRESSURE_STATE: MemoryPressure.HIGH.state}) in points(
        data, catalog.MEMORY_PRESSURE_TRANSITIONS.name)
    assert points(data, catalog.MEMORY_PRESSURE_ACTIONS.name) == [
        (3, {catalog.ATTR_PRESSURE_ACTION: "gc_collect"})]
    assert points(data, catalog.MEMORY_ALLOCATED.name)[0][0] > 0
    metrics.close()


def test_in_a_container_the_semantic_convention_container_metrics_are_reported(
        tmp_path: Path, meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    proc, root = cgroup_v2_container(tmp_path, limit_mb=1000, inactive_file_mb=100, oom_kills=2)
    (root / "memory.current").write_text(f"{400 * MB}\n")
    config = MemoryManagementConfig(monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000),
                                    enable_leak_detection=False)
    with MemoryManager(config, meter_provider=meter_provider, proc_root=proc, cgroup_root=root):
        metrics = collect(reader)
    usage, working_set = metrics["container.memory.usage"], metrics["container.memory.working_set"]
    for metric in (usage, working_set):
        assert isinstance(metric.data, Sum) and not metric.data.is_monotonic   # UpDownCounter, as defined
        assert metric.unit == "By"
    assert _value(metrics, catalog.CONTAINER_MEMORY_USAGE) == 400 * MB
    assert _value(metrics, catalog.CONTAINER_MEMORY_WORKING_SET) == 300 * MB
    assert _value(metrics, catalog.MEMORY_CONTAINER_OOM_KILLS) == 2
    assert not {"memory.container.usage", "memory.container.working_set"} & set(metrics)
