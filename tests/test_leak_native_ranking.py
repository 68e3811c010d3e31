"""The native gap as a suspect: steady growth outside the Python heap, and nothing else."""

from __future__ import annotations

from otel_memory.leak.native import NativeMemory
from otel_memory.leak.native_ranking import NativeRanker
from otel_memory.leak.ranking import RankingPolicy

MB = 1024 * 1024
POLICY = RankingPolicy(warmup_checks=3, min_growth_checks=4)


def run(readings: list[NativeMemory | None]) -> list[bool]:
    ranker = NativeRanker(POLICY)
    return [ranker.update(reading, warming_up=check <= POLICY.warmup_checks, check=check,
                          now=60.0 * check) is not None
            for check, reading in enumerate(readings, start=1)]


def test_a_gap_growing_at_every_check_is_a_native_suspect_after_the_warm_up() -> None:
    readings = [NativeMemory(200 * MB + i * 4 * MB, 100 * MB, 5 * MB) for i in range(10)]
    found = run(list(readings))
    assert found == [False] * 6 + [True] * 4      # baseline at check 3, four peaks
    ranker = NativeRanker(POLICY)
    suspect = None
    for check, reading in enumerate(readings, start=1):
        suspect = ranker.update(reading, warming_up=check <= 3, check=check, now=60.0 * check)
    assert suspect is not None and suspect.kind == "native" and suspect.type_name == "native"
    assert suspect.size_delta == 7 * 4 * MB and suspect.growth_bytes_per_s > 0


def test_growth_of_the_python_heap_is_not_native_even_with_some_overhead() -> None:
    # the heap grows 10 MB a check; the gap (pymalloc's overhead) 1 MB: a Python leak
    readings = [NativeMemory(200 * MB + i * 11 * MB, 100 * MB + i * 10 * MB, 5 * MB) for i in range(12)]
    assert not any(run(list(readings)))


def test_memory_freed_into_malloc_s_free_lists_is_not_native() -> None:
    # the resident set grows, but by what malloc keeps for reuse
    readings = [NativeMemory(200 * MB + i * 6 * MB, 100 * MB, 5 * MB + i * 6 * MB) for i in range(12)]
    assert not any(run(list(readings)))


def test_a_missing_reading_is_skipped_and_a_wobble_is_no_suspect() -> None:
    wobble = [NativeMemory(200 * MB + (i % 3) * 3 * MB, 100 * MB, 5 * MB) for i in range(15)]
    assert not any(run([None, *wobble]))
