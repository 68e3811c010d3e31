"""The built-in actions: the rate limiter, gc.collect() and malloc_trim with RSS measured."""

from __future__ import annotations

import gc
import platform

import pytest

from otel_memory import probes
from otel_memory.response import GC_COLLECT, MALLOC_TRIM, ActionResult, MallocTrim, RateLimiter
from otel_memory.response.actions import collect_garbage


def read_rss() -> int:
    return probes.read_statm("/proc/self/statm")[0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_lets_one_run_through_per_interval() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock)
    assert limiter.try_acquire()
    clock.now += 9.9
    assert not limiter.try_acquire()
    clock.now += 0.2
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    limiter.reset()
    assert limiter.try_acquire()


def test_rate_limiter_zero_interval_always_runs_and_negative_is_refused() -> None:
    limiter = RateLimiter(0.0)
    assert all(limiter.try_acquire() for _ in range(3))
    with pytest.raises(ValueError, match=r"min_interval_s=-1.*expected a number >= 0"):
        RateLimiter(-1)


def test_reclaimed_bytes_is_never_negative() -> None:
    assert ActionResult(GC_COLLECT, rss_before=100, rss_after=40).reclaimed_bytes == 60
    assert ActionResult(GC_COLLECT, rss_before=40, rss_after=100).reclaimed_bytes == 0


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_collect_garbage_finds_the_unreachable_cycles() -> None:
    gc.disable()
    try:
        for _ in range(1000):
            Cycle()
        result = collect_garbage(read_rss)
    finally:
        gc.enable()
    assert result.action == GC_COLLECT
    assert result.detail >= 1000
    assert result.rss_before > 0 and result.rss_after > 0


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_malloc_trim_gives_freed_heap_pages_back() -> None:
    trimmer = MallocTrim()
    assert trimmer.available
    # 4 kB blocks come from the malloc heap; keeping every 64th one alive stops free() from
    # trimming the top of the heap by itself, so only malloc_trim can give the rest back.
    blocks = [bytes([i % 251]) * 4000 for i in range(25_000)]
    pinned = blocks[::64]
    del blocks
    result = trimmer.trim(read_rss)
    assert result is not None and result.action == MALLOC_TRIM
    print(f"malloc_trim gave back {result.reclaimed_bytes / 2**20:.1f} MB of ~95 MB freed")
    assert result.reclaimed_bytes > 40 * 2**20
    assert len(pinned) == 391


def test_malloc_trim_unavailable_warns_once(monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    trimmer = MallocTrim()
    assert trimmer.trim(read_rss) is None
    assert not trimmer.available
    warnings = [r for r in caplog.records if "malloc_trim is unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "musl" in warnings[0].getMessage()
