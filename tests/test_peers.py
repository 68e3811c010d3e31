"""Beside opentelemetry-instrumentation-system-metrics: the shared families are left to it."""

from __future__ import annotations

import gc
import logging
import types
from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog, peers
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.errors import ConfigError
from otel_memory.manager import MemoryManager
from otel_memory.peers import SharedFamilies, semconv_signals_mode, system_metrics_families

SHARED = {"process.memory.usage", "process.memory.virtual", "cpython.gc.collections",
          "cpython.gc.collected_objects", "cpython.gc.uncollectable_objects"}


def _scopes(reader: InMemoryMetricReader) -> dict[str, set[str]]:
    """{scope name: metric names} of one collection."""
    data = reader.get_metrics_data()
    scopes: dict[str, set[str]] = {}
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            names = {metric.name for metric in scope_metrics.metrics if metric.data.data_points}
            scopes.setdefault(scope_metrics.scope.name, set()).update(names)
    return scopes


def _manager(provider: MeterProvider) -> MemoryManager:
    manager = MemoryManager(MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=64_000, monitoring_interval_ms=60_000),
        enable_leak_detection=False), meter_provider=provider)
    manager.initialize()
    return manager


@pytest.mark.parametrize(("raw", "mode"), [(None, "auto"), ("auto", "auto"), ("OFF", "off"), (" on ", "on")])
def test_the_mode_comes_from_memory_semconv_signals(raw: str | None, mode: str) -> None:
    environ = {} if raw is None else {"MEMORY_SEMCONV_SIGNALS": raw}
    assert semconv_signals_mode(environ) == mode


def test_a_bad_mode_is_a_config_error_naming_the_variable_and_the_choices(
        monkeypatch: pytest.MonkeyPatch, meter_provider: MeterProvider) -> None:
    with pytest.raises(ConfigError,
                       match=r"MEMORY_SEMCONV_SIGNALS='maybe' is not valid; expected auto, on or off"):
        semconv_signals_mode({"MEMORY_SEMCONV_SIGNALS": "maybe"})
    monkeypatch.setenv("MEMORY_SEMCONV_SIGNALS", "maybe")
    manager = MemoryManager(MemoryManagementConfig(enable_leak_detection=False),
                            meter_provider=meter_provider)
    callbacks = list(gc.callbacks)
    with pytest.raises(ConfigError, match="MEMORY_SEMCONV_SIGNALS"):
        manager.initialize()
    assert not manager.initialized
    assert gc.callbacks == callbacks   # refused before anything was installed


def _fake_system_metrics(instrumented: bool, config: object) -> dict[str, object]:
    instance = types.SimpleNamespace(is_instrumented_by_opentelemetry=instrumented, _config=config)
    module = types.SimpleNamespace(SystemMetricsInstrumentor=types.SimpleNamespace(_instance=instance))
    return {peers.SYSTEM_METRICS_MODULE: module}


def test_the_peer_counts_only_when_loaded_and_instrumented() -> None:
    assert system_metrics_families({}) is None
    assert system_metrics_families(_fake_system_metrics(False, {"process.memory.usage": None})) is None
    families = system_metrics_families(_fake_system_metrics(True, {"process.memory.usage": None,
                                                                  "system.cpu.time": ["idle"]}))
    assert families == {"process.memory.usage", "system.cpu.time"}
    assert system_metrics_families(_fake_system_metrics(True, None)) == {"*"}   # unreadable: everything


def test_only_what_the_peer_reports_is_left_to_it(caplog: pytest.LogCaptureFixture) -> None:
    reported: list[frozenset[str] | None] = [None]
    policy = SharedFamilies(catalog.ALL, "auto", lambda: reported[0])
    assert policy.shared == SHARED
    with caplog.at_level(logging.INFO, logger="otel_memory"):
        assert policy.left_to_peers() == frozenset()
        reported[0] = frozenset({"process.memory.usage", "cpython.gc.collections", "system.cpu.time"})
        assert policy.left_to_peers() == {"process.memory.usage", "cpython.gc.collections"}
        assert policy.left_to_peers() == {"process.memory.usage", "cpython.gc.collections"}
        reported[0] = frozenset({"*"})
        assert policy.left_to_peers() == SHARED
    lines = [record.getMessage() for record in caplog.records if "left to it" in record.getMessage()]
    assert len(lines) == 1 and record_level(caplog, lines[0]) == logging.INFO
    assert "cpython.gc.collections, process.memory.usage" in lines[0]
    assert "MEMORY_SEMCONV_SIGNALS=on" in lines[0]


def record_level(caplog: pytest.LogCaptureFixture, message: str) -> int:
    return next(record.levelno for record in caplog.records if record.getMessage() == message)


def test_off_never_reports_the_shared_families_and_on_always_does(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="otel_memory"):
        off = SharedFamilies(catalog.ALL, "off", lambda: None)
        assert off.left_to_peers() == SHARED
        assert off.left_to_peers() == SHARED
    assert len([r for r in caplog.records if "MEMORY_SEMCONV_SIGNALS=off" in r.getMessage()]) == 1
    assert SharedFamilies(catalog.ALL, "on", lambda: frozenset({"*"})).left_to_peers() == frozenset()


@pytest.fixture
def system_metrics(meter_provider: MeterProvider) -> Iterator[SystemMetricsInstrumentor]:
    peer = SystemMetricsInstrumentor()
    yield peer
    if peer.is_instrumented_by_opentelemetry:
        peer.uninstrument()


def test_beside_the_real_system_metrics_each_family_has_one_scope(
        meter_provider: MeterProvider, reader: InMemoryMetricReader,
        system_metrics: SystemMetricsInstrumentor, caplog: pytest.LogCaptureFixture) -> None:
    manager = _manager(meter_provider)
    try:
        before = _scopes(reader)
        assert before["otel_memory"] >= SHARED   # alone, we report them
        # The peer starts after us (the order opentelemetry-instrument may load the two in).
        with caplog.at_level(logging.INFO, logger="otel_memory"):
            system_metrics.instrument(meter_provider=meter_provider)
            scopes = _scopes(reader)
            _scopes(reader)
        ours, theirs = scopes["otel_memory"], scopes["opentelemetry.instrumentation.system_metrics"]
        assert not ours & SHARED, f"reported by both: {sorted(ours & SHARED)}"
        assert {"process.memory.usage", "cpython.gc.collections"} <= theirs
        assert {catalog.MEMORY_ALLOCATED.name, catalog.PROCESS_PAGING_FAULTS.name} <= ours
        assert len([r for r in caplog.records if "left to it" in r.getMessage()]) == 1
        system_metrics.uninstrument()
        assert _scopes(reader)["otel_memory"] >= SHARED   # the peer stopped: ours again
    finally:
        manager.shutdown()


def test_with_on_both_report_the_shared_families(
        monkeypatch: pytest.MonkeyPatch, meter_provider: MeterProvider, reader: InMemoryMetricReader,
        system_metrics: SystemMetricsInstrumentor) -> None:
    monkeypatch.setenv("MEMORY_SEMCONV_SIGNALS", "on")
    system_metrics.instrument(meter_provider=meter_provider)
    manager = _manager(meter_provider)
    try:
        assert _scopes(reader)["otel_memory"] >= SHARED
    finally:
        manager.shutdown()


def test_with_off_the_shared_families_are_not_reported_even_alone(
        monkeypatch: pytest.MonkeyPatch, meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    monkeypatch.setenv("MEMORY_SEMCONV_SIGNALS", "off")
    manager = _manager(meter_provider)
    try:
        ours = _scopes(reader)["otel_memory"]
        assert not ours & SHARED
        assert catalog.MEMORY_ALLOCATED.name in ours
    finally:
        manager.shutdown()
