"""MemoryInstrumentor, the auto-instrumentation entry point: everything added is removed again."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.global_manager import current_manager
from otel_memory.instrumentor import MemoryInstrumentor
from tests.conftest import collect, points


@pytest.fixture(autouse=True)
def environment(instrument_environment: None) -> Iterator[None]:
    yield
    MemoryInstrumentor().uninstrument()


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
