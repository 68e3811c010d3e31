"""instrument()/uninstrument() and MemoryInstrumentor: everything added is removed again."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog, instrumentor
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.instrumentor import MemoryInstrumentor, current_manager, instrument, uninstrument
from tests.conftest import collect, points


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MEMORY_ENABLE_LEAK_DETECTION", "false")
    monkeypatch.setenv("MEMORY_MONITORING_INTERVAL_MS", "50")
    yield
    uninstrument()
    MemoryInstrumentor().uninstrument()


def test_instrument_starts_one_manager_and_uninstrument_removes_everything(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    callbacks_before = list(gc.callbacks)
    manager = instrument(meter_provider=meter_provider)
    assert instrument(meter_provider=meter_provider) is manager
    assert current_manager() is manager
    assert manager.config.monitor_config.monitoring_interval_ms == 50   # read from the environment
    thread = manager._thread
    assert thread is not None and thread.is_alive()
    assert len(gc.callbacks) == len(callbacks_before) + 1
    assert points(collect(reader), catalog.MEMORY_ALLOCATED.name)

    uninstrument()
    thread.join(3)
    assert not thread.is_alive()
    assert gc.callbacks == callbacks_before
    assert current_manager() is None and not manager.initialized
    assert not points(collect(reader), catalog.MEMORY_ALLOCATED.name)
    uninstrument()   # nothing left: fine


def test_instrument_after_uninstrument_reports_again_on_the_same_provider(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    instrument(meter_provider=meter_provider)
    assert points(collect(reader), catalog.MEMORY_ALLOCATED.name)
    uninstrument()
    assert not points(collect(reader), catalog.MEMORY_ALLOCATED.name)
    instrument(meter_provider=meter_provider)
    assert points(collect(reader), catalog.MEMORY_ALLOCATED.name)
    assert points(collect(reader), catalog.MEMORY_PRESSURE_LEVEL.name)


def test_an_explicit_config_wins_over_the_environment(meter_provider: MeterProvider) -> None:
    config = MemoryManagementConfig(monitor_config=MemoryLimitConfig(max_heap_mb=4096),
                                    enable_leak_detection=False)
    manager = instrument(config=config, meter_provider=meter_provider)
    assert manager.limit.bytes == 4096 * 1024 * 1024 and manager.limit.source == "config"


def test_the_entry_point_is_registered() -> None:
    found = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "memory"]
    assert len(found) == 1
    assert found[0].load() is MemoryInstrumentor


def test_memory_instrumentor_round_trip(meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    callbacks_before = list(gc.callbacks)
    MemoryInstrumentor().instrument(meter_provider=meter_provider)
    manager = current_manager()
    assert manager is not None and manager.initialized
    assert points(collect(reader), catalog.MEMORY_PRESSURE_LEVEL.name) == [(0, {})]
    MemoryInstrumentor().uninstrument()
    assert current_manager() is None
    assert gc.callbacks == callbacks_before
    assert not points(collect(reader), catalog.MEMORY_PRESSURE_LEVEL.name)


def test_bad_configuration_under_auto_instrumentation_is_logged_not_raised(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        meter_provider: MeterProvider) -> None:
    monkeypatch.setenv("MEMORY_MAX_HEAP_MB", "lots")
    callbacks_before = list(gc.callbacks)
    with caplog.at_level(logging.ERROR, logger="otel_memory"):
        MemoryInstrumentor().instrument(meter_provider=meter_provider)
    assert current_manager() is None
    assert gc.callbacks == callbacks_before
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "not instrumented" in errors[0] and "MEMORY_MAX_HEAP_MB='lots'" in errors[0]


def test_programmatic_instrument_raises_the_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_DB_POOL_SIZE", "-3")
    with pytest.raises(ValueError, match="MEMORY_DB_POOL_SIZE=-3"):
        instrument()
    assert instrumentor.current_manager() is None
