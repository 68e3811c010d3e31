"""MemoryManager: levels from real RSS against configured limits, listeners, logs, admit(), lifecycle."""

from __future__ import annotations

import errno
import gc
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog, probes
from otel_memory import manager as manager_module
from otel_memory import sampler as sampler_module
from otel_memory.config import MB, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.errors import ConfigError, MemoryPressureRejected
from otel_memory.manager import MemoryManager, _monitor
from otel_memory.pressure import MemoryPressure
from otel_memory.probes import PAGE_SIZE
from otel_memory.sampler import MemorySample
from tests.conftest import cgroup_v2_container, collect, manager_with_limit, points


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def _config(interval_ms: int = 60_000, **limits: float) -> MemoryManagementConfig:
    return MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(monitoring_interval_ms=interval_ms, **limits),  # type: ignore[arg-type]
        enable_leak_detection=False)


def _ballast(mb: int) -> bytearray:
    """``mb`` megabytes that are really resident (written, not just reserved)."""
    return bytearray(b"\x01") * (mb * MB)


@pytest.fixture
def relative() -> dict[str, float]:
    """Thresholds 40/80/120 MB above today's RSS, the limit 300 MB above."""
    rss = _rss_mb()
    return {"max_heap_mb": rss + 300, "warning_threshold_mb": rss + 40,
            "gc_pressure_threshold_mb": rss + 80, "critical_threshold_mb": rss + 120,
            "hysteresis_mb": 10}


@pytest.fixture
def manager(meter_provider: MeterProvider, relative: dict[str, float]) -> Iterator[MemoryManager]:
    manager = MemoryManager(_config(**relative), meter_provider=meter_provider)
    manager.initialize()
    yield manager
    manager.shutdown()


def test_levels_follow_rss_against_the_configured_thresholds(
        manager: MemoryManager, caplog: pytest.LogCaptureFixture) -> None:
    changes: list[tuple[MemoryPressure, MemoryPressure]] = []
    manager.on_pressure_change(lambda level, previous: changes.append((level, previous)))
    assert manager.get_memory_pressure() == MemoryPressure.LOW
    assert manager.limit.source == "config"
    with caplog.at_level(logging.INFO, logger="otel_memory"):
        ballast = _ballast(60)
        assert manager.check_pressure() == MemoryPressure.MODERATE
        ballast += _ballast(40)
        assert manager.check_pressure() == MemoryPressure.HIGH
        ballast += _ballast(50)
        assert manager.check_pressure() == MemoryPressure.CRITICAL
        used = manager.get_memory_stats().usage_bytes
        del ballast
        gc.collect()
        assert manager.check_pressure() == MemoryPressure.LOW
    assert changes == [
        (MemoryPressure.MODERATE, MemoryPressure.LOW), (MemoryPressure.HIGH, MemoryPressure.MODERATE),
        (MemoryPressure.CRITICAL, MemoryPressure.HIGH), (MemoryPressure.LOW, MemoryPressure.CRITICAL)]
    messages = [record.getMessage() for record in caplog.records]
    for title in ("Moderate", "High", "Critical", "Low"):
        assert f"Memory pressure changed to {title}" in messages
    limit_mb = manager.limit.bytes // MB
    # Critical pressure, but usage (about 150 MB over the start) stays below the limit (300 MB
    # over it): the limit is not said to be exceeded.
    assert used < manager.limit.bytes
    assert not [m for m in messages if m.startswith("Memory limit exceeded")]
    critical = [m for m in messages if m.startswith("Memory pressure critical:")]
    assert len(critical) == 1
    reported_used = int(critical[0].split(": ")[1].split(" MB")[0])
    critical_mb = manager.thresholds.critical // MB
    assert critical[0] == (f"Memory pressure critical: {reported_used} MB used, {limit_mb} MB limit "
                           f"(critical threshold {critical_mb} MB)")
    assert abs(reported_used - used // MB) <= 5
    assert manager.transitions[MemoryPressure.CRITICAL] == 1
    assert manager.transitions[MemoryPressure.LOW] == 1


def test_the_monitor_thread_ticks_and_tells_listeners(
        meter_provider: MeterProvider, relative: dict[str, float]) -> None:
    manager = MemoryManager(_config(interval_ms=50, **relative), meter_provider=meter_provider)
    seen = threading.Event()
    manager.initialize()
    try:
        manager.on_pressure_change(lambda level, _previous: seen.set()
                                   if level == MemoryPressure.HIGH else None)
        ballast = _ballast(100)
        assert seen.wait(5), "the monitor thread never reported HIGH"
        assert manager.get_memory_pressure() == MemoryPressure.HIGH
        del ballast
    finally:
        manager.shutdown()


def test_a_failing_listener_does_not_stop_the_others(
        manager: MemoryManager, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[MemoryPressure] = []

    def broken(_level: MemoryPressure, _previous: MemoryPressure) -> None:
        raise RuntimeError("boom")

    manager.on_pressure_change(broken)
    remove = manager.on_pressure_change(lambda level, _previous: calls.append(level))
    ballast = _ballast(60)
    with caplog.at_level(logging.ERROR, logger="otel_memory"):
        manager.check_pressure()
    assert calls == [MemoryPressure.MODERATE]
    assert any("listener" in record.getMessage() for record in caplog.records)
    remove()
    ballast += _ballast(40)
    manager.check_pressure()
    assert calls == [MemoryPressure.MODERATE]


class Responder:
    pressure_action = "cache_shrink"

    def __init__(self) -> None:
        self.levels: list[MemoryPressure] = []

    def respond_to_pressure(self, level: MemoryPressure) -> bool:
        self.levels.append(level)
        return level >= MemoryPressure.HIGH


def test_responders_are_told_held_weakly_and_counted(manager: MemoryManager) -> None:
    responder = Responder()
    manager.register_responder(responder)
    assert manager.responders() == [responder]
    ballast = _ballast(100)
    manager.check_pressure()
    assert responder.levels == [MemoryPressure.HIGH]
    assert manager.actions == {"cache_shrink": 1}
    manager.unregister_responder(responder)
    assert manager.responders() == []
    manager.register_responder(responder)
    del responder
    gc.collect()
    assert manager.responders() == []
    del ballast


def test_admit_rejects_only_at_critical(manager: MemoryManager, caplog: pytest.LogCaptureFixture) -> None:
    manager.admit()
    ballast = _ballast(150)
    assert manager.check_pressure() == MemoryPressure.CRITICAL
    with caplog.at_level(logging.ERROR, logger="otel_memory"):
        for _ in range(3):
            with pytest.raises(MemoryPressureRejected):
                manager.admit("wsgi")
    assert manager.rejections == {"wsgi": 3}
    assert manager.actions["reject"] == 3
    assert [r.getMessage() for r in caplog.records].count(
        "Memory pressure critical, rejecting requests") == 1
    del ballast
    gc.collect()
    manager.check_pressure()
    manager.admit("wsgi")
    assert manager.rejections == {"wsgi": 3}


def test_admission_control_can_be_switched_off(meter_provider: MeterProvider,
                                                relative: dict[str, float]) -> None:
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000, **relative),  # type: ignore[arg-type]
        enable_leak_detection=False, enable_admission_control=False)
    with MemoryManager(config, meter_provider=meter_provider) as manager:
        ballast = _ballast(150)
        assert manager.check_pressure() == MemoryPressure.CRITICAL
        manager.admit()
        del ballast


def test_memory_stats(manager: MemoryManager) -> None:
    stats = manager.get_memory_stats()
    rss = psutil.Process().memory_info().rss
    assert abs(stats.allocated_bytes - rss) < 16 * MB
    assert stats.peak_usage_bytes >= stats.allocated_bytes
    assert stats.limit_bytes == manager.limit.bytes and stats.limit_source == "config"
    assert stats.utilization == pytest.approx(stats.usage_bytes / stats.limit_bytes)
    assert stats.allocation_count > 1000 and stats.virtual_bytes >= stats.allocated_bytes
    assert stats.pressure == MemoryPressure.LOW and stats.thresholds is manager.thresholds
    manager.check_pressure()
    assert manager.get_memory_trend().samples >= 2


def test_pressure_follows_the_container_working_set(tmp_path: Path, meter_provider: MeterProvider) -> None:
    proc, root = cgroup_v2_container(tmp_path, limit_mb=1000, inactive_file_mb=100)

    def usage(mb: int) -> None:
        (root / "memory.current").write_text(f"{mb * MB}\n")

    usage(500)
    config = MemoryManagementConfig(monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000),
                                    enable_leak_detection=False)
    with MemoryManager(config, meter_provider=meter_provider, proc_root=proc, cgroup_root=root) as manager:
        assert (manager.limit.bytes, manager.limit.source) == (1000 * MB, "cgroup_v2")
        assert manager.get_memory_pressure() == MemoryPressure.LOW
        usage(900)   # working set 800 MB: 80% of the limit, between 78% and 87.5%
        assert manager.check_pressure() == MemoryPressure.HIGH
        usage(1000)
        assert manager.check_pressure() == MemoryPressure.CRITICAL
        assert manager.get_memory_stats().container_working_set_bytes == 900 * MB


def test_shutdown_stops_the_thread_and_removes_the_gc_callback(manager: MemoryManager) -> None:
    thread = manager._thread
    assert thread is not None and thread.is_alive()
    assert manager.gc_watch._callback in gc.callbacks
    manager.shutdown()
    thread.join(3)
    assert not thread.is_alive()
    assert manager.gc_watch._callback not in gc.callbacks
    assert not manager.initialized
    with pytest.raises(RuntimeError, match="not initialized"):
        manager.get_memory_stats()
    manager.shutdown()   # twice is fine


def test_an_unreferenced_manager_is_collected_while_its_thread_runs(meter_provider: MeterProvider) -> None:
    manager = MemoryManager(_config(interval_ms=20), meter_provider=meter_provider)
    manager.initialize()
    manager.on_pressure_change(lambda level, previous: None)
    thread, callback = manager._thread, manager.gc_watch._callback
    assert thread is not None and thread.is_alive()
    reference = weakref.ref(manager)
    time.sleep(0.1)   # a few ticks
    del manager
    deadline = time.monotonic() + 5
    while reference() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert reference() is None, "something keeps the manager alive"
    thread.join(3)
    assert not thread.is_alive(), "the monitor thread outlived its manager"
    assert callback not in gc.callbacks


def test_initialize_is_idempotent(manager: MemoryManager) -> None:
    thread = manager._thread
    manager.initialize()
    assert manager._thread is thread
    assert sum(1 for t in threading.enumerate() if t is thread) == 1


def test_a_wrong_config_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="is not a MemoryManagementConfig"):
        MemoryManager({"max_heap_mb": 1})  # type: ignore[arg-type]


def test_a_failing_leak_detector_degrades_with_one_warning(
        meter_provider: MeterProvider, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "otel_memory.leak", None)   # import fails
    config = MemoryManagementConfig(monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000))
    with caplog.at_level(logging.WARNING, logger="otel_memory"), \
            MemoryManager(config, meter_provider=meter_provider) as manager:
        assert manager.initialized and manager.leak_detector is None
        assert manager.get_memory_stats().allocated_bytes > 0
    assert [r.getMessage() for r in caplog.records if "leak detection" in r.getMessage()]


def test_pool_registry_names_known_pools(manager: MemoryManager) -> None:
    with pytest.raises(KeyError, match=r"no pool named 'db'; known pools: \[\]"):
        manager.get_pool("db")


def _pool_manager(meter_provider: Any, **config: Any) -> MemoryManager:
    manager = MemoryManager(MemoryManagementConfig(enable_leak_detection=False, **config),
                            meter_provider=meter_provider)
    manager.initialize()
    return manager


def test_pool_registry_names_duplicates_and_unknown_pools(meter_provider: Any) -> None:
    manager = _pool_manager(meter_provider)
    try:
        manager.create_pool("connections", object, 2)
        with pytest.raises(ValueError, match="'connections' already exists"):
            manager.create_pool("connections", object, 2)
        with pytest.raises(KeyError, match=r"no pool named 'missing'; known pools: \['connections'\]"):
            manager.get_pool("missing")
        with pytest.raises(KeyError, match="missing"):
            manager.get_from_pool("missing")
    finally:
        manager.shutdown()


def test_disabled_object_pooling_refuses_to_create_pools(meter_provider: Any) -> None:
    manager = _pool_manager(meter_provider, enable_object_pooling=False)
    try:
        with pytest.raises(ConfigError, match="enable_object_pooling is False"):
            manager.create_pool("connections", object, 2)
        with pytest.raises(KeyError):
            manager.get_pool("connections")
    finally:
        manager.shutdown()


def test_listeners_and_responders_may_call_the_manager_from_another_thread(
        manager: MemoryManager) -> None:
    # A listener that hands work to another thread and waits for it (an event loop, a worker
    # pool) deadlocked while the tick held the manager's lock during announcements.
    finished: list[str] = []

    def in_other_thread(name: str, work: Any) -> None:
        worker = threading.Thread(target=lambda: (work(), finished.append(name)), daemon=True)
        worker.start()
        worker.join(5)

    manager.on_pressure_change(lambda _level, _previous: in_other_thread(
        "listener", lambda: manager.record_action("listener_action")))

    class WaitingResponder:
        pressure_action = "cache_shrink"

        def respond_to_pressure(self, _level: MemoryPressure) -> bool:
            in_other_thread("responder", lambda: manager.on_pressure_change(lambda *_: None))
            return True

    responder = WaitingResponder()
    manager.register_responder(responder)
    ballast = _ballast(60)
    assert manager.check_pressure() == MemoryPressure.MODERATE
    assert finished == ["listener", "responder"]
    assert manager.actions == {"listener_action": 1, "cache_shrink": 1}
    del ballast


def test_a_failing_listener_is_logged_by_name_never_by_repr(
        manager: MemoryManager, caplog: pytest.LogCaptureFixture) -> None:
    class Secretive:
        def __repr__(self) -> str:
            return "Secretive(api_key='sk-do-not-log')"

        def on_change(self, _level: MemoryPressure, _previous: MemoryPressure) -> None:
            raise RuntimeError("token sk-do-not-log rejected")

    manager.on_pressure_change(Secretive().on_change)
    ballast = _ballast(60)
    with caplog.at_level(logging.ERROR, logger="otel_memory"):
        manager.check_pressure()
    assert any("Secretive.on_change" in record.getMessage() and "RuntimeError at test_manager.py:"
               in record.getMessage() for record in caplog.records)
    assert "sk-do-not-log" not in caplog.text   # neither the repr nor the error's message
    del ballast


def test_a_shutdown_racing_the_monitor_logs_no_failed_tick(
        manager: MemoryManager, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The monitor saw the manager initialized, then shutdown() won the race to the tick.
    def shut_down_first() -> MemoryPressure:
        manager.shutdown()
        return MemoryManager.check_pressure(manager)

    monkeypatch.setattr(manager, "check_pressure", shut_down_first)
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        _monitor(weakref.ref(manager), threading.Event(), 0.001)   # returns once shut down
    assert not [r.getMessage() for r in caplog.records if "tick failed" in r.getMessage()]


def test_admit_rereads_a_stale_level_so_a_surge_between_ticks_is_refused(
        meter_provider: MeterProvider) -> None:
    rss = psutil.Process().memory_info().rss / MB
    manager = MemoryManager(MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=rss + 400, warning_threshold_mb=rss + 100,
                                         critical_threshold_mb=rss + 150, monitoring_interval_ms=60_000),
        enable_leak_detection=False), meter_provider=meter_provider)
    manager.initialize()
    try:
        manager.admit()                                   # LOW: admitted
        ballast = bytearray(250 * MB)
        ballast[::4096] = b"x" * len(ballast[::4096])     # make it resident
        assert manager.get_memory_pressure() == MemoryPressure.LOW   # no tick has run since
        time.sleep(0.3)                                    # older than ADMISSION_MAX_AGE_S
        with pytest.raises(MemoryPressureRejected):
            manager.admit()
        assert manager.get_memory_pressure() == MemoryPressure.CRITICAL
        assert manager.rejections == {"admit": 1}
        del ballast
    finally:
        manager.shutdown()


class _Usage:
    """A /proc for a manager whose RSS the test sets (``self/statm``, replaced atomically), and a
    cgroup root without a memory controller: limit and thresholds come from the config."""

    def __init__(self, tmp_path: Path) -> None:
        self.proc, self.cgroup = tmp_path / "proc", tmp_path / "cgroup"
        (self.proc / "self").mkdir(parents=True)
        (self.proc / "self" / "cgroup").write_text("0::/\n")
        self.cgroup.mkdir()

    def set(self, mb: int) -> None:
        pages = mb * MB // PAGE_SIZE
        staged = self.proc / "self" / "statm.new"
        staged.write_text(f"{2 * pages} {pages} 0 0 0 0 0\n")
        os.replace(staged, self.proc / "self" / "statm")

    def manager(self, meter_provider: MeterProvider, interval_ms: int) -> MemoryManager:
        config = _config(interval_ms, max_heap_mb=1000, warning_threshold_mb=600,
                         gc_pressure_threshold_mb=700, critical_threshold_mb=800, hysteresis_mb=10)
        return MemoryManager(config, meter_provider=meter_provider, proc_root=self.proc,
                             cgroup_root=self.cgroup)


def test_from_moderate_on_admit_reads_usage_afresh_every_10_ms(
        tmp_path: Path, meter_provider: MeterProvider) -> None:
    usage = _Usage(tmp_path)
    usage.set(650)
    with usage.manager(meter_provider, interval_ms=60_000) as manager:
        assert manager.get_memory_pressure() == MemoryPressure.MODERATE
        manager.admit()
        ticks = manager.last_tick
        usage.set(850)   # a request admitted a moment ago took 200 MB: no tick has run since
        time.sleep(manager_module.ADMISSION_ELEVATED_AGE_S * 2)
        with pytest.raises(MemoryPressureRejected):
            manager.admit()
        assert manager.get_memory_pressure() == MemoryPressure.CRITICAL
        usage.set(650)   # and gave it back
        time.sleep(manager_module.ADMISSION_ELEVATED_AGE_S * 2)
        manager.admit()
        assert manager.get_memory_pressure() == MemoryPressure.MODERATE
        assert manager.rejections == {"admit": 1}
        # readings taken for admission (one per request) do not feed the trend window
        assert manager.last_tick == ticks


def test_admit_reads_usage_at_most_once_per_10_ms_however_many_requests(
        tmp_path: Path, meter_provider: MeterProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = _Usage(tmp_path)
    usage.set(650)
    with usage.manager(meter_provider, interval_ms=60_000) as manager:
        readings: list[float] = []
        full_samples: list[float] = []
        take_usage, take = manager.sampler.take_usage, manager.sampler.take

        def counted_usage() -> MemorySample:
            readings.append(time.monotonic())
            return take_usage()

        def counted_full() -> MemorySample:
            full_samples.append(time.monotonic())
            return take()

        monkeypatch.setattr(manager.sampler, "take_usage", counted_usage)
        monkeypatch.setattr(manager.sampler, "take", counted_full)
        began, admits = time.monotonic(), 0
        while time.monotonic() - began < 0.1:       # ten times the age a reading is trusted
            manager.admit()
            admits += 1
        elapsed = time.monotonic() - began
        assert 1 <= len(readings) <= elapsed / manager_module.ADMISSION_ELEVATED_AGE_S + 2
        assert len(readings) < admits
        assert full_samples == [], "admission reads usage only, not PSI, GC or USS"


def test_while_low_a_recent_reading_is_trusted(tmp_path: Path, meter_provider: MeterProvider,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager_module, "ADMISSION_MAX_AGE_S", 60.0)   # no reading ages here
    usage = _Usage(tmp_path)
    usage.set(100)
    with usage.manager(meter_provider, interval_ms=60_000) as manager:
        assert manager.get_memory_pressure() == MemoryPressure.LOW
        usage.set(850)
        manager.admit()   # the LOW reading is recent: trusted, usage not read per request
        assert manager.get_memory_pressure() == MemoryPressure.LOW
        assert manager.check_pressure() == MemoryPressure.CRITICAL


def test_a_starved_monitor_hands_the_readings_to_admit(tmp_path: Path, meter_provider: MeterProvider,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A monitor thread that never gets to tick: a server whose CPU is taken by others.
    monkeypatch.setattr(manager_module, "_monitor",
                        lambda ref, stop, interval: stop.wait())
    usage = _Usage(tmp_path)
    usage.set(100)
    with usage.manager(meter_provider, interval_ms=20) as manager:
        manager.admit()
        assert manager.get_memory_pressure() == MemoryPressure.LOW
        usage.set(850)
        time.sleep(0.1)   # five monitoring intervals without a tick, well within 0.25 s
        with pytest.raises(MemoryPressureRejected):
            manager.admit()
        assert manager.get_memory_pressure() == MemoryPressure.CRITICAL


def test_the_limit_is_said_to_be_exceeded_only_when_usage_is_above_it(
        meter_provider: MeterProvider, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="otel_memory"):
        manager = manager_with_limit(_rss_mb() / 2, meter_provider)
    try:
        assert manager.get_memory_pressure() == MemoryPressure.CRITICAL
        used = manager.get_memory_stats().usage_bytes
        assert used > manager.limit.bytes
    finally:
        manager.shutdown()
    messages = [record.getMessage() for record in caplog.records]
    exceeded = [m for m in messages if m.startswith("Memory limit exceeded: ")]
    assert len(exceeded) == 1 and f"{manager.limit.bytes // MB} MB limit" in exceeded[0]
    assert not [r for r in caplog.records if r.getMessage().startswith("Memory pressure critical:")]


def test_a_usage_probe_failing_once_keeps_the_level_and_admission_working(
        tmp_path: Path, meter_provider: MeterProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampler_module, "PROBE_RETRY_FIRST_S", 0.05)
    usage = _Usage(tmp_path)
    usage.set(850)
    with usage.manager(meter_provider, interval_ms=60_000) as manager:
        assert manager.get_memory_pressure() == MemoryPressure.CRITICAL
        read_statm = probes.read_statm

        def too_many_open_files(path: str) -> tuple[int, int]:
            raise OSError(errno.EMFILE, "Too many open files")     # a surge's passing failure

        monkeypatch.setattr(probes, "read_statm", too_many_open_files)
        assert manager.check_pressure() == MemoryPressure.CRITICAL, "not LOW from a usage of 0"
        monkeypatch.setattr(probes, "read_statm", read_statm)
        with pytest.raises(MemoryPressureRejected):
            manager.admit()
        assert manager.get_memory_stats().usage_bytes == 850 * MB, "the last usage known"
        usage.set(650)
        time.sleep(0.1)                             # the probe is tried again
        manager.admit()
        assert manager.get_memory_pressure() == MemoryPressure.MODERATE


def test_a_working_set_read_failing_once_is_not_replaced_by_usage_with_page_cache(
        tmp_path: Path, meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    proc, root = cgroup_v2_container(tmp_path, limit_mb=1000, inactive_file_mb=400)
    (root / "memory.current").write_text(f"{950 * MB}\n")    # a 550 MB working set
    manager = MemoryManager(_config(), meter_provider=meter_provider, proc_root=proc,
                            cgroup_root=root)
    with manager:
        level = manager.get_memory_pressure()
        assert level < MemoryPressure.CRITICAL
        stat = root / "memory.stat"
        stat.rename(root / "memory.stat.away")
        assert manager.check_pressure() == level
        assert manager.get_memory_stats().usage_bytes == 550 * MB
        manager.sampler.invalidate()
        assert not points(collect(reader), catalog.MEMORY_UTILIZATION.name), "unknown: no point"


def test_a_change_an_admission_reading_finds_is_told_from_another_thread(
        tmp_path: Path, meter_provider: MeterProvider) -> None:
    usage = _Usage(tmp_path)
    usage.set(650)
    with usage.manager(meter_provider, interval_ms=60_000) as manager:
        heard: list[tuple[MemoryPressure, MemoryPressure, str]] = []
        release, told = threading.Event(), threading.Event()

        def slow_listener(level: MemoryPressure, previous: MemoryPressure) -> None:
            heard.append((previous, level, threading.current_thread().name))
            release.wait(10)            # a slow listener of the application's
            told.set()

        manager.on_pressure_change(slow_listener)
        usage.set(850)
        time.sleep(2 * manager_module.ADMISSION_ELEVATED_AGE_S)
        with pytest.raises(MemoryPressureRejected):
            manager.admit()             # finds CRITICAL, and does not wait for the listener
        assert not told.is_set(), "admit() returned while the listener still ran"
        release.set()
        assert told.wait(10)
        assert heard == [(MemoryPressure.MODERATE, MemoryPressure.CRITICAL,
                          "otel-memory-pressure-change")]
        assert manager.check_pressure() == MemoryPressure.CRITICAL
        assert len(heard) == 1, "told once"
