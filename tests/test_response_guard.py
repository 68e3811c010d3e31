"""memory_guard: memory-critical functions are refused at CRITICAL pressure, and counted."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog, global_manager
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.errors import MemoryPressureRejected
from otel_memory.manager import MemoryManager
from otel_memory.pressure import MemoryPressure
from otel_memory.response import ADMISSION_DECORATOR, memory_guard
from tests.conftest import collect, manager_with_limit, points, rss_mb


@pytest.fixture
def critical(meter_provider: MeterProvider) -> Iterator[MemoryManager]:
    """A manager whose limit is half this process's RSS: CRITICAL from the first tick."""
    manager = manager_with_limit(rss_mb() / 2, meter_provider)
    assert manager.get_memory_pressure() == MemoryPressure.CRITICAL
    yield manager
    manager.shutdown()


def test_guarded_function_is_refused_at_critical_and_counted(
        critical: MemoryManager, reader: InMemoryMetricReader, caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    @memory_guard(critical)
    def build_report(rows: int) -> int:
        calls.append(rows)
        return rows

    with caplog.at_level(logging.INFO, logger="otel_memory"):
        for _ in range(3):
            with pytest.raises(MemoryPressureRejected, match="memory pressure is critical"):
                build_report(10)
    assert calls == []
    assert build_report.__name__ == "build_report"
    assert critical.rejections == {ADMISSION_DECORATOR: 3}
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["Memory pressure critical, rejecting requests"]  # once per episode
    exported = points(collect(reader), catalog.MEMORY_ADMISSION_REJECTIONS.name)
    assert exported == [(3, {catalog.ATTR_ADMISSION_POINT: ADMISSION_DECORATOR})]


def test_fallback_answers_instead_of_raising(critical: MemoryManager) -> None:
    @memory_guard(critical, fallback=lambda rows: -rows)
    def build_report(rows: int) -> int:
        return rows

    assert build_report(7) == -7
    assert critical.rejections[ADMISSION_DECORATOR] == 1


async def test_coroutine_functions_are_guarded_too(critical: MemoryManager) -> None:
    @memory_guard(critical)
    async def embed(text: str) -> int:
        return len(text)

    with pytest.raises(MemoryPressureRejected):
        await embed("abc")

    async def cached(text: str) -> int:
        return 0

    @memory_guard(critical, fallback=cached)
    async def embed_or_cached(text: str) -> int:
        return len(text)

    assert await embed_or_cached("abc") == 0


def test_functions_run_below_critical_and_when_admission_is_off(meter_provider: MeterProvider) -> None:
    roomy = manager_with_limit(rss_mb() * 4 + 200, meter_provider)
    off = manager_with_limit(rss_mb() / 2, meter_provider, admission=False)
    try:
        assert off.get_memory_pressure() == MemoryPressure.CRITICAL
        for manager in (roomy, off):
            assert memory_guard(manager)(lambda: "ran")() == "ran"
            assert manager.rejections == {}
    finally:
        roomy.shutdown()
        off.shutdown()


def test_without_a_manager_the_process_wide_one_is_used(meter_provider: MeterProvider) -> None:
    @memory_guard()
    def work() -> str:
        return "ran"

    global_manager.uninstrument()
    assert work() == "ran"  # no manager anywhere: passes through
    config = MemoryManagementConfig(monitor_config=MemoryLimitConfig(
        max_heap_mb=rss_mb() / 2, monitoring_interval_ms=60_000), enable_leak_detection=False)
    manager = global_manager.instrument(config=config, meter_provider=meter_provider)
    try:
        with pytest.raises(MemoryPressureRejected):
            work()
        assert manager.rejections == {ADMISSION_DECORATOR: 1}
    finally:
        global_manager.uninstrument()


def test_bad_arguments_are_refused_clearly(critical: MemoryManager) -> None:
    with pytest.raises(TypeError, match="fallback=3 is not callable"):
        memory_guard(critical, fallback=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="decorates functions, not int"):
        memory_guard(critical)(5)  # type: ignore[type-var]


def test_the_decorator_without_its_parentheses_is_refused_when_decorating() -> None:
    with pytest.raises(TypeError, match=r"write @memory_guard\(\) or @memory_guard\(manager\)"):
        @memory_guard  # type: ignore[arg-type]
        def handler(request: object) -> object:
            return request
