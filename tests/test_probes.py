"""The probes read procfs, getrusage, cgroup and PSI files and the interpreter correctly."""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path

import psutil
import pytest

from otel_memory import probes


def test_statm_against_psutil() -> None:
    rss, vms = probes.read_statm(f"/proc/{os.getpid()}/statm")
    info = psutil.Process().memory_info()
    assert abs(rss - info.rss) < 8 * 1024 * 1024
    assert abs(vms - info.vms) < 8 * 1024 * 1024


def test_statm_fixture(tmp_path: Path) -> None:
    path = tmp_path / "statm"
    path.write_text("1000 250 30 1 0 400 0\n")
    assert probes.read_statm(path) == (250 * probes.PAGE_SIZE, 1000 * probes.PAGE_SIZE)


def test_rusage_peak_is_at_least_rss_now() -> None:
    peak, minor, major = probes.read_rusage()
    assert peak >= psutil.Process().memory_info().rss * 0.9
    assert minor > 0 and major >= 0


def test_gc_stats_per_generation() -> None:
    before = probes.read_gc_stats()
    gc.collect()
    after = probes.read_gc_stats()
    assert len(after) == 3
    assert after[2][0] == before[2][0] + 1


def test_int_file_and_keyed_file(tmp_path: Path) -> None:
    (tmp_path / "memory.current").write_text("123456\n")
    assert probes.read_int_file(tmp_path / "memory.current") == 123456
    (tmp_path / "memory.stat").write_text("anon 10\ninactive_file 4096\nactive_file 7\n")
    assert probes.read_keyed(tmp_path / "memory.stat", "inactive_file") == {"inactive_file": 4096}
    with pytest.raises(KeyError, match="oom_kill"):
        probes.read_keyed(tmp_path / "memory.stat", "oom_kill")
    # cgroup v1 has both; a key is a whole first field, never the tail of another key.
    (tmp_path / "v1.stat").write_text("total_inactive_file 99\ninactive_file 5\nswap 0")
    assert probes.read_keyed(tmp_path / "v1.stat", "inactive_file", "swap") == {
        "inactive_file": 5, "swap": 0}
    assert probes.read_keyed(tmp_path / "v1.stat", "total_inactive_file") == {
        "total_inactive_file": 99}
    with pytest.raises(FileNotFoundError):
        probes.read_int_file(tmp_path / "missing")
    (tmp_path / "bad").write_text("max\n")
    with pytest.raises(ValueError):
        probes.read_int_file(tmp_path / "bad")


def test_psi_totals_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "memory"
    path.write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n"
                    "full avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n")
    assert probes.read_psi_totals(path) == (2.5, 0.001)


def test_real_psi_when_the_kernel_has_it() -> None:
    path = Path("/proc/pressure/memory")
    try:
        some, full = probes.read_psi_totals(path)
    except OSError:
        return   # no PSI on this kernel: the sampler then reports None (tested there)
    assert some >= full >= 0


def test_allocated_blocks_follow_live_objects() -> None:
    before = probes.read_allocated_blocks()
    kept = [object() for _ in range(50_000)]
    assert probes.read_allocated_blocks() - before >= 40_000
    del kept
    assert probes.read_allocated_blocks() < before + 40_000


def test_tracemalloc_only_while_tracing() -> None:
    was_tracing = tracemalloc.is_tracing()
    if was_tracing:
        tracemalloc.stop()
    try:
        assert probes.read_tracemalloc() is None
        tracemalloc.start()
        kept = bytearray(1024 * 1024)
        current, peak = probes.read_tracemalloc() or (0, 0)
        assert current >= len(kept) and peak >= current
    finally:
        tracemalloc.stop()
        if was_tracing:
            tracemalloc.start()
