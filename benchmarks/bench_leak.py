"""Benchmark: the leak detector's census on a heap with 1M extra live objects.

(a) Longest stall of a thread that sleeps 1 ms in a loop, while a census runs in another
    thread (goal <= 10 ms); for reference, the stall of a bare ``gc.get_objects()`` (the floor
    on which the census's first step rests) and of the idle process.
(b) CPU time of one census (thread CPU time of the census thread; goal <= 0.5 s).
(c) Wall time of census + compare against pympler's ``SummaryTracker.diff()`` on the same heap
    in one run (goal: ours 10x faster or more).

Run: ``.venv/bin/python benchmarks/bench_leak.py [--objects 1000000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import threading
import time
from collections.abc import Callable
from functools import partial

from otel_memory.leak.census import HeapSnapshot, compare, take_census


class Item:
    def __init__(self, number: int) -> None:
        self.number = number
        self.label = "item"


def build_heap(objects: int) -> list[object]:
    """``objects`` extra live objects: instances, tuples, dicts and lists, a quarter each."""
    heap: list[object] = []
    for i in range(objects // 4):
        heap += (Item(i), (i, "a"), {"k": [i]}, [i])
    return heap


class HoldRecorder:
    """A census pause that records how long the census held on between pauses."""

    def __init__(self) -> None:
        self.holds: list[float] = []
        self._since = time.perf_counter()

    def __call__(self, seconds: float) -> None:
        now = time.perf_counter()
        self.holds.append(now - self._since)
        time.sleep(seconds)
        self._since = time.perf_counter()


def census_with_holds(snapshots: list[HeapSnapshot], holds: list[list[float]]) -> None:
    recorder = HoldRecorder()
    snapshots.append(take_census(pause=recorder))
    recorder(0)
    holds.append(recorder.holds)


def longest_stall(work: Callable[[], object], period_s: float = 0.001) -> tuple[float, float]:
    """(longest stall of a 1 ms-sleeping thread while ``work()`` runs, wall time of work)."""
    stop = threading.Event()
    stalls: list[float] = []
    ready = threading.Event()

    def sleeper() -> None:
        worst = 0.0
        ready.set()
        while not stop.is_set():
            before = time.perf_counter()
            time.sleep(period_s)
            worst = max(worst, time.perf_counter() - before - period_s)
        stalls.append(worst)

    thread = threading.Thread(target=sleeper)
    thread.start()
    ready.wait()
    time.sleep(0.02)
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join()
    return stalls[0], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    heap = build_heap(options.objects)
    gc.collect()
    print(f"heap: {len(gc.get_objects()):,} tracked objects ({len(heap):,} extra)")

    idle, census_stall, floor_stall, cpu, first_hold, other_holds = [], [], [], [], [], []
    for _ in range(options.rounds):
        idle.append(longest_stall(lambda: time.sleep(0.3))[0])
        floor_stall.append(longest_stall(lambda: len(gc.get_objects()))[0])
        snapshots: list[HeapSnapshot] = []
        holds: list[list[float]] = []
        census_stall.append(longest_stall(partial(census_with_holds, snapshots, holds))[0])
        cpu.append(snapshots[0].cpu_s)
        first_hold.append(holds[0][0])
        other_holds.append(max(holds[0][1:]))
    ms = 1e3
    print(f"(a) longest stall of a 1 ms sleeper during a census: median of {options.rounds} rounds "
          f"{statistics.median(census_stall) * ms:.1f} ms, worst {max(census_stall) * ms:.1f} ms   "
          f"goal <= 10 ms\n"
          f"    same sleeper, bare gc.get_objects(): median {statistics.median(floor_stall) * ms:.1f} ms; "
          f"idle process: median {statistics.median(idle) * ms:.1f} ms\n"
          f"    census's longest hold between pauses: first step (gc.get_objects) median "
          f"{statistics.median(first_hold) * ms:.1f} ms; every later chunk <= "
          f"{statistics.median(other_holds) * ms:.1f} ms (median of rounds)")
    print(f"(b) CPU time of one census: median {statistics.median(cpu):.3f} s, "
          f"max {max(cpu):.3f} s   goal <= 0.5 s")

    from pympler.tracker import SummaryTracker

    ours, theirs = [], []
    for _ in range(2):
        previous = take_census()
        started = time.perf_counter()
        diff = compare(previous, take_census())
        ours.append(time.perf_counter() - started)
        tracker = SummaryTracker()
        started = time.perf_counter()
        theirs_rows = tracker.diff()
        theirs.append(time.perf_counter() - started)
        del tracker
    print(f"(c) census + compare {statistics.mean(ours):.3f} s ({len(diff.rows)} changed types); "
          f"pympler SummaryTracker.diff() {statistics.mean(theirs):.3f} s ({len(theirs_rows)} rows); "
          f"ratio {statistics.mean(theirs) / statistics.mean(ours):.1f}x (mean of 2 interleaved runs)   "
          f"goal >= 10x")
    del heap


if __name__ == "__main__":
    main()
