"""instrument()/uninstrument(): one process-wide manager, and everything added is removed again."""

from __future__ import annotations

import gc

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog, global_manager
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.global_manager import current_manager, instrument, uninstrument
from tests.conftest import collect, points

pytestmark = pytest.mark.usefixtures("instrument_environment")


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

def test_programmatic_instrument_raises_the_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_DB_POOL_SIZE", "-3")
    with pytest.raises(ValueError, match="MEMORY_DB_POOL_SIZE=-3"):
        instrument()
    assert global_manager.current_manager() is None
