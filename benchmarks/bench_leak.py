"""Benchmark: the leak detector's census on a heap with 1M extra live objects.

(a) Longest stall of a thread that sleeps 1 ms in a loop while a full leak check runs (census,
    survival samples, containers, native reading, ranking), against the same stall during one
    bare ``gc.get_objects()`` (the floor on which the census's first step rests), interleaved
    (goal: ratio <= 1.1).
(b) CPU time of one leak check (thread CPU time; goal <= 0.5 s), and of the census alone.
(c) Wall time of census + compare against pympler's ``SummaryTracker.diff()`` on the same heap
    in one run (goal: ours 10x faster or more).
(d) The cost of the opt-in allocation attribution: an allocation-heavy loop's speed with a
    tracemalloc window open against closed, and the CPU time of closing a window.
(e) The four leak kinds of issue 10 (benchmarks/leak_kinds.py): which of otel-memory,
    pympler's SummaryTracker and tracemalloc's compare_to('lineno') names each.

Run: ``.venv/bin/python benchmarks/bench_leak.py [--objects 1000000] [--rounds 5] [--no-kinds]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import threading
import time
from collections.abc import Callable
from functools import partial

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_memory.leak import LeakDetector
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


def timed_check(detector: LeakDetector, cpu: list[float]) -> None:
    """One leak check; its thread CPU time appended to ``cpu``."""
    started = time.thread_time()
    detector.check()
    cpu.append(time.thread_time() - started)


def allocation_loop(seconds: float) -> int:
    """Allocation-heavy work: how many small dicts and strings it made in ``seconds``."""
    made, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for i in range(1000):
            _ = {"id": i, "name": f"item {i}"}
        made += 1000
    return made


def attribution_cost(rounds: int) -> tuple[float, float]:
    """(throughput of allocation-heavy work with an attribution window open / closed, median of
    interleaved rounds; CPU seconds of closing a window on this heap)."""
    from otel_memory.leak.attribution import AllocationAttributor

    ratios, finish_cpu = [], []
    for _ in range(rounds):
        closed = allocation_loop(0.5)
        attributor = AllocationAttributor(window_s=0.5, min_interval_s=0.0)
        attributor.begin(["dict"])
        opened = allocation_loop(0.5)
        started = time.thread_time()
        attributor.finish()
        finish_cpu.append(time.thread_time() - started)
        ratios.append(opened / closed)
    return statistics.median(ratios), statistics.median(finish_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-kinds", action="store_true", help="skip the leak-kinds table (d)")
    options = parser.parse_args()
    heap = build_heap(options.objects)
    gc.collect()
    print(f"heap: {len(gc.get_objects()):,} tracked objects ({len(heap):,} extra)")

    detector = LeakDetector(meter_provider=MeterProvider(), tracer_provider=TracerProvider(),
                            deep_look=False)
    for _ in range(3):      # histories, survival samples and containers as in a running service
        detector.check()
    idle, check_stall, floor_stall, check_cpu, census_cpu = [], [], [], [], []
    first_hold, other_holds = [], []
    for _ in range(options.rounds):
        idle.append(longest_stall(lambda: time.sleep(0.3))[0])
        floor_stall.append(longest_stall(lambda: len(gc.get_objects()))[0])
        cpu_box: list[float] = []
        check_stall.append(longest_stall(partial(timed_check, detector, cpu_box))[0])
        check_cpu.append(cpu_box[0])
        snapshots: list[HeapSnapshot] = []
        holds: list[list[float]] = []
        census_with_holds(snapshots, holds)
        census_cpu.append(snapshots[0].cpu_s)
        first_hold.append(holds[0][1])           # after the first pause: gc.get_objects()
        other_holds.append(max(holds[0][2:]))
    ms = 1e3
    ratios = [stall / floor for stall, floor in zip(check_stall, floor_stall, strict=True)]
    print(f"(a) longest stall of a 1 ms sleeper during a full leak check / during one bare "
          f"gc.get_objects(): median ratio {statistics.median(ratios):.2f} of {options.rounds} "
          f"interleaved rounds (check {statistics.median(check_stall) * ms:.1f} ms, bare "
          f"{statistics.median(floor_stall) * ms:.1f} ms, idle {statistics.median(idle) * ms:.1f} ms)"
          f"   goal <= 1.1\n"
          f"    census's longest hold between pauses: gc.get_objects() median "
          f"{statistics.median(first_hold) * ms:.1f} ms; every later chunk <= "
          f"{statistics.median(other_holds) * ms:.1f} ms (median of rounds)")
    print(f"(b) CPU time of one leak check: median {statistics.median(check_cpu):.3f} s, max "
          f"{max(check_cpu):.3f} s (the census alone: median {statistics.median(census_cpu):.3f} s)"
          f"   goal <= 0.5 s")

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
    throughput, finish_cpu = attribution_cost(options.rounds)
    print(f"(d) allocation attribution (opt-in): allocation-heavy work runs at {throughput:.2f}x "
          f"its speed while a window is open (tracemalloc, 1 frame; windows last 10 s, at most "
          f"one an hour); closing a window on this heap costs {finish_cpu:.3f} s of CPU")
    detector.stop()
    del heap
    if not options.no_kinds:
        from leak_kinds import table

        print("(e) which tool names each leak kind of issue 10 (24 steps each, fresh process each):")
        print(table())


if __name__ == "__main__":
    main()
