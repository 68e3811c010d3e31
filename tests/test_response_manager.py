"""MemoryPressureManager: GC and trim at HIGH with RSS measured, rate limits, both run modes."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog, probes
from otel_memory.config import MB, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.manager import MemoryManager
from otel_memory.pressure import MemoryPressure
from otel_memory.response import (
    CACHE_SHRINK,
    GC_COLLECT,
    MALLOC_TRIM,
    MemoryPressureManager,
    PressurePolicy,
)
from tests.conftest import collect, points


def rss_mb() -> float:
    return probes.read_statm("/proc/self/statm")[0] / MB


def limits_above(base_mb: float, *, high_at: float, critical_at: float,
                 interval_ms: int = 60_000) -> MemoryLimitConfig:
    """Thresholds ``high_at`` / ``critical_at`` MB above ``base_mb``."""
    return MemoryLimitConfig(
        max_heap_mb=base_mb + critical_at + 100, warning_threshold_mb=base_mb + high_at / 2,
        gc_pressure_threshold_mb=base_mb + high_at, critical_threshold_mb=base_mb + critical_at,
        monitoring_interval_ms=interval_ms)


def make_manager(monitor: MemoryLimitConfig, provider: MeterProvider | None = None,
                 **options: object) -> MemoryManager:
    config = MemoryManagementConfig(monitor_config=monitor, enable_leak_detection=False,
                                    **options)  # type: ignore[arg-type]
    manager = MemoryManager(config, meter_provider=provider)
    manager.initialize()
    return manager


@pytest.fixture
def high_manager(meter_provider: MeterProvider) -> Iterator[MemoryManager]:
    """A manager whose thresholds put this process at HIGH right now."""
    base = rss_mb()
    monitor = MemoryLimitConfig(max_heap_mb=base + 500, warning_threshold_mb=base * 0.3,
                                gc_pressure_threshold_mb=base * 0.5, critical_threshold_mb=base + 400,
                                monitoring_interval_ms=60_000)
    manager = make_manager(monitor, meter_provider, gc_min_interval_s=60.0)
    yield manager
    manager.shutdown()


class Node:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.partner: Node | None = None


def cyclic_garbage(count: int, size: int) -> list[bytes]:
    """``count`` pairs of nodes in reference cycles, each holding ``size`` bytes; returns every
    64th payload, kept alive so free() cannot trim the heap top by itself."""
    pinned = []
    for i in range(count):
        first, second = Node(bytes([i % 251]) * size), Node(b"")
        first.partner, second.partner = second, first
        if i % 64 == 0:
            pinned.append(first.payload)
    return pinned


def test_high_level_gc_gives_memory_back_once_per_interval(reader: InMemoryMetricReader,
                                                           meter_provider: MeterProvider) -> None:
    gc.collect()
    base = rss_mb()
    manager = make_manager(limits_above(base, high_at=60, critical_at=600), meter_provider,
                           gc_min_interval_s=1.0)
    pressure = MemoryPressureManager(manager, PressurePolicy(high=(GC_COLLECT, MALLOC_TRIM)))
    gc.disable()  # the workload's cycles wait for the pressure action, not a timely automatic GC
    try:
        pinned = cyclic_garbage(30_000, 4000)  # ~115 MB held only by unreachable cycles
        assert manager.check_pressure() == MemoryPressure.HIGH
        results = pressure.respond()
        again = pressure.respond()
    finally:
        gc.enable()
    by_kind = {result.action: result for result in results}
    assert set(by_kind) == {GC_COLLECT, MALLOC_TRIM}
    assert again == []  # inside the interval nothing runs again
    gc_back, trim_back = by_kind[GC_COLLECT].reclaimed_bytes, by_kind[MALLOC_TRIM].reclaimed_bytes
    print(f"\nRSS given back at HIGH: gc_collect {gc_back / MB:.1f} MB, malloc_trim "
          f"{trim_back / MB:.1f} MB (of ~115 MB of garbage), RSS now {rss_mb() - base:+.1f} MB")
    assert gc_back + trim_back > 60 * MB
    assert by_kind[GC_COLLECT].detail >= 60_000
    assert manager.actions == {GC_COLLECT: 1, MALLOC_TRIM: 1}

    time.sleep(1.05)
    gc.disable()
    try:
        cyclic_garbage(15_000, 4000)
        assert manager.check_pressure() >= MemoryPressure.MODERATE
        later = pressure.respond(MemoryPressure.HIGH)
    finally:
        gc.enable()
    assert [result.action for result in later] == [GC_COLLECT, MALLOC_TRIM]
    assert manager.actions == {GC_COLLECT: 2, MALLOC_TRIM: 2}

    exported = collect(reader)
    actions = dict((attrs[catalog.ATTR_PRESSURE_ACTION], value)
                   for value, attrs in points(exported, catalog.MEMORY_PRESSURE_ACTIONS.name))
    assert actions == {GC_COLLECT: 2, MALLOC_TRIM: 2}
    reclaimed = sum(value for value, _ in points(exported, catalog.MEMORY_PRESSURE_RECLAIMED.name))
    assert reclaimed > 60 * MB
    assert len(pinned) == 469
    manager.shutdown()


def test_nothing_runs_at_low_or_when_gc_pressure_is_off(meter_provider: MeterProvider) -> None:
    base = rss_mb()
    manager = make_manager(MemoryLimitConfig(max_heap_mb=base * 4 + 200, enable_gc_pressure=False),
                           meter_provider, gc_min_interval_s=0.0)
    pressure = MemoryPressureManager(manager)
    try:
        assert pressure.respond() == []
        assert pressure.respond(MemoryPressure.HIGH) == []  # gc and trim switched off
        assert GC_COLLECT not in manager.actions
    finally:
        manager.shutdown()


def test_responders_are_told_again_only_while_pressure_persists(high_manager: MemoryManager) -> None:
    class ShrinkingCache:
        pressure_action = CACHE_SHRINK

        def __init__(self) -> None:
            self.entries = list(range(64))

        def respond_to_pressure(self, level: MemoryPressure) -> bool:
            if level < MemoryPressure.MODERATE or not self.entries:
                return False
            del self.entries[len(self.entries) // 2:]
            return True

    cache = ShrinkingCache()
    high_manager.register_responder(cache)
    pressure = MemoryPressureManager(high_manager, PressurePolicy(high=(CACHE_SHRINK,)))
    assert pressure.respond() == []  # first round at this level: the manager told the cache already
    assert len(cache.entries) == 64
    results = pressure.respond()  # pressure persists: told again
    assert [result.action for result in results] == [CACHE_SHRINK]
    assert len(cache.entries) == 32
    assert pressure.respond() == []  # rate-limited (gc_min_interval_s=60)
    assert high_manager.actions[CACHE_SHRINK] == 1


def test_thread_mode_runs_gc_once_per_interval_and_stops(high_manager: MemoryManager) -> None:
    pressure = MemoryPressureManager(high_manager, PressurePolicy(high=(GC_COLLECT,)), interval_s=0.02)
    with pressure:
        assert pressure.running
        deadline = time.monotonic() + 5
        while GC_COLLECT not in high_manager.actions and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # ~15 more rounds, all inside the 60 s interval
    assert not pressure.running
    assert high_manager.actions[GC_COLLECT] == 1


async def test_coroutine_mode_responds_and_ends_on_stop(high_manager: MemoryManager) -> None:
    pressure = MemoryPressureManager(high_manager, PressurePolicy(high=(GC_COLLECT,)), interval_s=0.02)
    task = asyncio.create_task(pressure.monitor_and_respond())
    deadline = time.monotonic() + 5
    while GC_COLLECT not in high_manager.actions and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    pressure.stop()
    await asyncio.wait_for(task, 2)
    assert high_manager.actions[GC_COLLECT] == 1


async def test_a_level_change_wakes_the_coroutine_at_once(meter_provider: MeterProvider) -> None:
    base = rss_mb()
    manager = make_manager(limits_above(base, high_at=30, critical_at=50), meter_provider,
                           gc_min_interval_s=0.0)
    pressure = MemoryPressureManager(manager, PressurePolicy(critical=(GC_COLLECT,)), interval_s=30)
    task = asyncio.create_task(pressure.monitor_and_respond())
    try:
        await asyncio.sleep(0.05)  # first round at LOW: nothing
        assert GC_COLLECT not in manager.actions
        # Memory grows past the critical threshold; the tick's listener wakes the coroutine.
        ballast = b"\x01" * (120 * MB)
        assert manager.check_pressure() == MemoryPressure.CRITICAL
        deadline = time.monotonic() + 5
        while GC_COLLECT not in manager.actions and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert manager.actions.get(GC_COLLECT) == 1  # long before the 30 s interval
    finally:
        task.cancel()
        manager.shutdown()
    assert len(ballast) == 120 * MB


def test_bad_arguments_are_refused_clearly(high_manager: MemoryManager) -> None:
    with pytest.raises(ValueError, match=r"interval_s=0.*> 0"):
        MemoryPressureManager(high_manager, interval_s=0)
    with pytest.raises(TypeError, match="policy=dict is not a PressurePolicy"):
        MemoryPressureManager(high_manager, {"high": ()})  # type: ignore[arg-type]


def test_thread_mode_restarts_in_a_forked_child_with_fresh_limits(high_manager: MemoryManager) -> None:
    import os

    pressure = MemoryPressureManager(high_manager, PressurePolicy(high=(GC_COLLECT,)), interval_s=0.02)
    with pressure:
        deadline = time.monotonic() + 5
        while GC_COLLECT not in high_manager.actions and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = os.fork()
        if pid == 0:  # the child: its own thread, its own rate limit, its own counts
            code = 1
            try:
                deadline = time.monotonic() + 5
                while high_manager.actions.get(GC_COLLECT) != 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                code = 0 if pressure.running and high_manager.actions.get(GC_COLLECT) == 1 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert high_manager.actions[GC_COLLECT] == 1  # the parent's count is its own


def test_a_failing_responder_warns_once_and_the_other_actions_still_run(
        meter_provider: MeterProvider, caplog: pytest.LogCaptureFixture) -> None:
    class BrokenCache:
        pressure_action = CACHE_SHRINK

        def respond_to_pressure(self, level: MemoryPressure) -> bool:
            raise OSError("disk cache at /srv/cache?token=s3cr3t unavailable")

    base = rss_mb()
    manager = make_manager(MemoryLimitConfig(
        max_heap_mb=base + 500, warning_threshold_mb=base * 0.3, gc_pressure_threshold_mb=base * 0.5,
        critical_threshold_mb=base + 400, monitoring_interval_ms=60_000), meter_provider,
        gc_min_interval_s=0.0)
    broken = BrokenCache()
    manager.register_responder(broken)
    pressure = MemoryPressureManager(manager, PressurePolicy(high=(CACHE_SHRINK, GC_COLLECT)))
    try:
        rounds = [pressure.respond() for _ in range(3)]
    finally:
        manager.shutdown()
    assert [[result.action for result in results] for results in rounds] == [[GC_COLLECT]] * 3
    warnings = [r.getMessage() for r in caplog.records if "pressure action" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith("otel_memory: pressure action cache_shrink failed: OSError at "
                                  "test_response_manager.py:")
    assert "s3cr3t" not in caplog.text and "/srv/cache" not in caplog.text   # no message, no value


class FlakyPolicy(PressurePolicy):
    """A replaced policy whose first rounds fail (a user's bug): the thread must survive it."""

    failures = 3

    def actions_for(self, level: MemoryPressure) -> tuple[str, ...]:
        if FlakyPolicy.failures > 0:
            FlakyPolicy.failures -= 1
            raise LookupError("no actions for tenant s3cr3t")
        return (GC_COLLECT,)


def test_the_thread_survives_a_failing_round_and_warns_once(
        high_manager: MemoryManager, caplog: pytest.LogCaptureFixture) -> None:
    pressure = MemoryPressureManager(high_manager, FlakyPolicy(), interval_s=0.02)
    with caplog.at_level(logging.WARNING, logger="otel_memory"), pressure:
        deadline = time.monotonic() + 5
        while GC_COLLECT not in high_manager.actions and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pressure.running
    assert high_manager.actions[GC_COLLECT] == 1      # the rounds after the failures ran
    warnings = [r.getMessage() for r in caplog.records if "round failed" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(
        "otel_memory: pressure response round failed: LookupError at test_response_manager.py:")
    assert "s3cr3t" not in caplog.text


def test_a_level_the_manager_has_moved_on_from_is_not_told_again(high_manager: MemoryManager) -> None:
    told: list[MemoryPressure] = []

    class Cache:
        pressure_action = CACHE_SHRINK

        def respond_to_pressure(self, level: MemoryPressure) -> bool:
            told.append(level)
            return True

    cache = Cache()
    high_manager.register_responder(cache)
    pressure = MemoryPressureManager(high_manager, PressurePolicy(high=(CACHE_SHRINK,)))
    assert pressure.respond() == []                  # the first round at HIGH
    # A round that read HIGH, overtaken by a tick that found LOW and told the cache so: the
    # cache must not hear HIGH after LOW.
    high_manager._level = MemoryPressure.LOW
    assert pressure.respond(MemoryPressure.HIGH) == []
    assert told == []
