"""One shared sample per collection cycle; a failing probe degrades one signal with one warning."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import threading
from pathlib import Path

import psutil
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import probes
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.limits import CgroupFiles, EffectiveLimit
from otel_memory.manager import MemoryManager
from otel_memory.sampler import MemorySample, Sampler
from tests.conftest import collect

GB = 1 << 30
PHYSICAL = EffectiveLimit(16 * GB, "physical")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _proc(tmp_path: Path, statm: str | None = "1000 250 30 1 0 400 0\n", psi: str | None = None) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    if statm is not None:
        (proc / "self" / "statm").write_text(statm)
    if psi is not None:
        (proc / "pressure").mkdir()
        (proc / "pressure" / "memory").write_text(psi)
    return proc


def test_the_sample_is_shared_while_fresh(tmp_path: Path) -> None:
    clock = FakeClock()
    sampler = Sampler(PHYSICAL, proc_root=_proc(tmp_path), max_age_s=0.5, clock=clock)
    first = sampler.current()
    clock.now += 0.4
    assert sampler.current() is first
    clock.now += 0.2
    second = sampler.current()
    assert second is not first and second.time == clock.now
    assert sampler.current(max_age_s=0.0) is not second


def test_one_collection_takes_one_sample(reader: InMemoryMetricReader, meter_provider: object) -> None:
    manager = MemoryManager(
        MemoryManagementConfig(monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000),
                               enable_leak_detection=False),
        meter_provider=meter_provider)  # type: ignore[arg-type]
    manager.initialize()
    try:
        takes = []
        original = manager.sampler.take

        def counting_take() -> MemorySample:
            takes.append(1)
            return original()

        manager.sampler.take = counting_take  # type: ignore[method-assign]
        # Expiry by age has its own test (fake clock); here no cycle may end by age however
        # loaded the machine is, so a cycle starts only when the sample is invalidated.
        manager.sampler._max_age_s = 3600.0
        manager.sampler.invalidate()
        metrics = collect(reader)
        assert len(metrics) >= 15
        assert len(takes) == 1, f"{len(takes)} samples for one collection of {len(metrics)} metrics"
        collect(reader)
        assert len(takes) == 1   # the next cycle within max_age reuses it
    finally:
        manager.shutdown()


def test_real_values(tmp_path: Path) -> None:
    sample = Sampler(PHYSICAL).take()
    info = psutil.Process().memory_info()
    assert sample.pid == os.getpid()
    assert sample.rss is not None and abs(sample.rss - info.rss) < 16 * 1024 * 1024
    assert sample.vms is not None and sample.vms >= sample.rss
    assert sample.peak is not None and sample.peak >= sample.rss * 0.9
    assert sample.allocated_blocks and sample.allocated_blocks > 1000
    assert sample.gc is not None and len(sample.gc) == 3
    assert sample.uss is None   # opt-in
    assert sample.tracemalloc_current is None


def test_uss_is_opt_in() -> None:
    sample = Sampler(PHYSICAL, enable_uss=True).take()
    assert sample.uss is not None and 0 < sample.uss <= (sample.rss or 0) * 1.1


def test_a_failing_probe_warns_once_and_only_that_signal_is_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    psi = "some avg10=0 avg60=0 avg300=0 total=3000000\nfull avg10=0 avg60=0 avg300=0 total=0\n"
    sampler = Sampler(PHYSICAL, proc_root=_proc(tmp_path, statm="garbage\n", psi=psi))
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        first = sampler.take()
        second = sampler.take()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "process.memory" in warnings[0].getMessage()
    assert "tried again in 1 s" in warnings[0].getMessage()
    assert "process.memory" in sampler.disabled
    for sample in (first, second):
        assert sample.rss is None and sample.vms is None
        assert sample.peak is not None and sample.allocated_blocks is not None and sample.gc
        assert sample.psi_some_s == 3.0 and sample.psi_full_s == 0.0


def test_missing_psi_and_cgroup_files_degrade_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    (cgroup / "memory.current").write_text(f"{300 * 1024 * 1024}\n")
    (cgroup / "memory.stat").write_text(f"anon 5\ninactive_file {100 * 1024 * 1024}\n")
    # memory.events is missing: the OOM kill count goes, usage and working set stay.
    limit = EffectiveLimit(GB, "cgroup_v2", CgroupFiles(2, cgroup))
    sampler = Sampler(limit, proc_root=_proc(tmp_path))
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        for _ in range(3):
            sample = sampler.take()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2, messages
    assert any("container.oom_kills" in m for m in messages)
    assert any("psi" in m for m in messages)
    assert sample.container_usage == 300 * 1024 * 1024
    assert sample.container_working_set == 200 * 1024 * 1024
    assert sample.oom_kills is None and sample.psi_some_s is None
    assert sample.rss is not None


def test_cgroup_pressure_file_is_preferred(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    (cgroup / "memory.pressure").write_text("some total=1000000\nfull total=500000\n")
    sampler = Sampler(EffectiveLimit(GB, "cgroup_v2", CgroupFiles(2, cgroup)),
                      proc_root=_proc(tmp_path, psi="some total=9\nfull total=9\n"))
    sample = sampler.take()
    assert (sample.psi_some_s, sample.psi_full_s) == (1.0, 0.5)


def test_reset_counts_gc_from_there() -> None:
    sampler = Sampler(PHYSICAL)
    gc.collect()
    assert (sampler.take().gc or ())[2][0] >= 1
    sampler.reset()
    assert (sampler.take().gc or ())[2][0] == 0
    gc.collect()
    assert (sampler.take().gc or ())[2][0] == 1


def test_a_fresh_sample_is_returned_without_the_lock(tmp_path: Path) -> None:
    # Every callback of a collection asks for the sample: while it is fresh, none of them
    # waits on the lock a new sample is taken under.
    clock = FakeClock()
    sampler = Sampler(PHYSICAL, proc_root=_proc(tmp_path), max_age_s=0.5, clock=clock)
    first = sampler.current()
    result: list[object] = []
    with sampler._lock:
        reader = threading.Thread(target=lambda: result.append(sampler.current()))
        reader.start()
        reader.join(5)
        assert result == [first]
    clock.now += 1.0
    assert sampler.current() is not first


def test_a_sample_of_another_process_is_never_shared(tmp_path: Path) -> None:
    clock = FakeClock()
    sampler = Sampler(PHYSICAL, proc_root=_proc(tmp_path), max_age_s=0.5, clock=clock)
    parent = dataclasses.replace(sampler.current(), pid=os.getpid() + 1)
    sampler._latest = parent       # what a forked child inherits before its reset
    child = sampler.current()
    assert child is not parent and child.pid == os.getpid()


def test_a_failing_probe_is_tried_again_later_and_less_often_until_it_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    reads: list[float] = []
    failing = [True]
    real = probes.read_statm

    def read_statm(path: str) -> tuple[int, int]:
        reads.append(now[0])
        if failing[0]:
            raise OSError(24, "Too many open files")      # EMFILE: passes, unlike a missing file
        return real(path)

    monkeypatch.setattr(probes, "read_statm", read_statm)
    sampler = Sampler(PHYSICAL, proc_root=_proc(tmp_path), clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="otel_memory"):
        for at in (100.0, 100.5, 101.0, 102.0, 103.0, 106.9, 107.0):
            now[0] = at
            assert sampler.take().rss is None
        # tried at once, 1 s later, then 2 s and 4 s after that: the back-off doubles
        assert reads == [100.0, 101.0, 103.0, 107.0]
        failing[0] = False
        now[0] = 114.9
        assert sampler.take().rss is None and reads[-1] == 107.0     # 8 s back-off not over
        now[0] = 115.0
        assert sampler.take().rss is not None and "process.memory" not in sampler.disabled
    messages = [(r.levelno, r.getMessage()) for r in caplog.records
                if "process.memory" in r.getMessage()]    # (no PSI file in this /proc either)
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO], "one warning"
    assert "Too many open files" in messages[0][1]
    assert messages[1][1] == "otel_memory: process.memory is available again"


def test_a_usage_reading_reads_what_pressure_is_computed_from_and_nothing_else(
        tmp_path: Path) -> None:
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    (cgroup / "memory.current").write_text(f"{300 * 1024 * 1024}\n")
    (cgroup / "memory.stat").write_text(f"anon 5\ninactive_file {100 * 1024 * 1024}\n")
    (cgroup / "memory.events").write_text("oom 0\noom_kill 2\n")
    limit = EffectiveLimit(GB, "cgroup_v2", CgroupFiles(2, cgroup))
    sampler = Sampler(limit, proc_root=_proc(tmp_path), enable_uss=True)
    reading = sampler.take_usage()
    full = sampler.take()
    assert reading.rss == full.rss and reading.rss is not None
    assert reading.container_usage == full.container_usage == 300 * 1024 * 1024
    assert reading.container_working_set == full.container_working_set == 200 * 1024 * 1024
    assert full.oom_kills == 2 and full.uss is not None and full.gc is not None
    assert (reading.oom_kills, reading.uss, reading.gc, reading.psi_some_s, reading.peak) == (
        None, None, None, None, None)
    assert sampler.current() is not reading, "not shared with the collection cycle"
