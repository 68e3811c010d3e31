"""Native memory: resident set less the Python heap less malloc's retained free bytes."""

from __future__ import annotations

import logging

import pytest

from otel_memory.leak.native import TRIM_SLOW_S, NativeMemory, NativeMemoryReader
from otel_memory.libc import MallocStats

MB = 1024 * 1024


def test_the_native_gap_leaves_out_the_python_heap_and_what_malloc_keeps_for_reuse() -> None:
    reading = NativeMemory(rss_bytes=300 * MB, python_bytes=120 * MB, retained_bytes=30 * MB)
    assert reading.native_bytes == 150 * MB
    assert NativeMemory(300 * MB, 120 * MB, None).native_bytes == 180 * MB
    assert reading.to_json_dict() == {"rss_bytes": 300 * MB, "python_bytes": 120 * MB,
                                      "retained_bytes": 30 * MB, "native_bytes": 150 * MB}


def test_the_reader_takes_its_sources_as_parameters() -> None:
    reader = NativeMemoryReader(rss=lambda: 200 * MB,
                                malloc=lambda: MallocStats(in_use_bytes=50 * MB, free_bytes=5 * MB,
                                                           mmapped_bytes=0))
    assert reader.has_malloc_stats
    assert reader.read(python_bytes=80 * MB) == NativeMemory(200 * MB, 80 * MB, 5 * MB)
    assert NativeMemoryReader(rss=lambda: None, malloc=False).read(1) is None


def test_a_failing_source_loses_its_signal_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> MallocStats:
        raise OSError("no such symbol")

    reader = NativeMemoryReader(rss=lambda: 100 * MB, malloc=broken)
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        first, second = reader.read(10 * MB), reader.read(10 * MB)
    assert first == second == NativeMemory(100 * MB, 10 * MB, None)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "mallinfo2" in warnings[0] and "OSError" in warnings[0]


def test_give_back_trims_through_the_given_function_and_a_failure_warns_once(
        caplog: pytest.LogCaptureFixture) -> None:
    trims: list[int] = []
    reader = NativeMemoryReader(rss=lambda: 100 * MB, malloc=False, trim=lambda: trims.append(1))
    assert reader.give_back() and reader.give_back() and trims == [1, 1]
    assert not NativeMemoryReader(rss=lambda: 100 * MB, malloc=False, trim=False).give_back()

    def broken() -> int:
        raise OSError("no malloc_trim")

    failing = NativeMemoryReader(rss=lambda: 100 * MB, malloc=False, trim=broken)
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        assert not failing.give_back() and not failing.give_back()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "malloc_trim" in warnings[0] and "OSError" in warnings[0]


def test_a_slow_trim_makes_the_next_checks_skip_theirs_twice_as_many_each_time() -> None:
    now = [0.0]
    trims: list[int] = []
    took = [0.05]                      # a big, fragmented heap: 50 ms a trim

    def trim() -> None:
        trims.append(len(trims))
        now[0] += took[0]

    reader = NativeMemoryReader(rss=lambda: 100 * MB, malloc=False, trim=trim,
                                clock=lambda: now[0])
    given = [reader.give_back() for _ in range(10)]
    # slow: skip 1; slow again: skip 2; again: skip 4
    assert given == [True, False, True, False, False, True, False, False, False, False]
    took[0] = 0.001                    # fast again (the heap was compacted)
    assert [reader.give_back() for _ in range(4)] == [True, True, True, True]
    assert TRIM_SLOW_S < 0.05
