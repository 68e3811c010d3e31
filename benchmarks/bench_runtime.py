"""Benchmark: cost of runtime memory signals and their effect on an allocation-heavy workload.

(a) One collection of otel_memory's full default runtime signal set against
    opentelemetry-instrumentation-system-metrics configured with only its memory and GC metrics,
    each on its own SDK MeterProvider with an InMemoryMetricReader, collected in turn in one
    run. Each of our collections starts a new collection cycle (the shared sample is taken
    afresh, as it is when collections are seconds apart). Collections run as
    PeriodicExportingMetricReader's export loop runs them (timeout OTEL_METRIC_EXPORT_TIMEOUT,
    30 s by default: every callback of a collection gets one CallbackOptions) and as a
    Prometheus scrape does (the SDK's default 10 s: a new CallbackOptions per instrument).
    Goals: per exported point ours/peer <= 0.5, the whole collection ours/peer <= 1.0. A third
    provider makes the SDK export our very points from callbacks returning ready-made
    Observations: the SDK's share, which no code exporting these points can avoid; and the
    SDK's cheapest layout for as many points (one instrument, one attribute per point) is
    timed too. Then a cProfile of our collections, its time split into otel_memory's and the
    SDK's.
(b) Throughput of an allocation-heavy workload with and without a MemoryManager monitoring at
    a 1 s interval, in an application exporting through a 1 s PeriodicExportingMetricReader
    (in-memory exporter) either way; runs interleaved. Goal: ratio with/without >= 0.99.
(c) Optional (--instructions N, needs valgrind): the application thread's instruction count
    with and without the manager, free of the timing noise of a shared machine.

Run: ``.venv/bin/python benchmarks/bench_runtime.py [--collections 300] [--pairs 20] [--seconds 1.5]``
(about 75 s; ``--only a`` or ``--only b`` runs one part)
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
    Sum,
)

from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.gcwatch import GcPauseWatch
from otel_memory.manager import MemoryManager

# The peer's memory and GC metrics (its config dict: metric name -> attribute values).
PEER_MEMORY_AND_GC: dict[str, list[str] | None] = {
    "system.memory.usage": ["used", "free", "cached"],
    "system.memory.utilization": ["used", "free", "cached"],
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.runtime.memory": ["rss", "vms"],
    "process.runtime.gc_count": None,
    "cpython.gc.collections": None,
    "cpython.gc.collected_objects": None,
    "cpython.gc.uncollectable_objects": None,
}


class InMemoryMetricExporter(MetricExporter):
    """Keeps every exported batch (the SDK has an in-memory reader, not an exporter)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[MetricsData] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: object) -> MetricExportResult:
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        return None


def _metrics(data: MetricsData | None) -> list[Metric]:
    if data is None:
        return []
    return [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]


def _points(reader: InMemoryMetricReader) -> tuple[int, int]:
    """(exported points, metrics) of one collection."""
    metrics = _metrics(reader.get_metrics_data())
    return sum(len(m.data.data_points) for m in metrics), len(metrics)


def _returning(observations: list[Observation]) -> Callable[[CallbackOptions], list[Observation]]:
    return lambda _options: observations


def sdk_alone(data: MetricsData | None) -> InMemoryMetricReader:
    """A reader whose collection makes the SDK export the same metrics and points as ``data``
    (same names, kinds, units, attributes) from callbacks that return ready-made Observations:
    what any code exporting these points pays the SDK, with no work of its own."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("sdk-alone")
    for metric in _metrics(data):
        if isinstance(metric.data, Histogram):
            histogram = meter.create_histogram(metric.name, unit=metric.unit or "")
            for point in metric.data.data_points:
                histogram.record(point.sum / max(point.count, 1), point.attributes)
            continue
        assert isinstance(metric.data, (Sum, Gauge))
        ready = [Observation(point.value, point.attributes or None)
                 for point in metric.data.data_points]
        create: Callable[..., object] = meter.create_observable_gauge
        if isinstance(metric.data, Sum):
            create = (meter.create_observable_counter if metric.data.is_monotonic
                      else meter.create_observable_up_down_counter)
        create(metric.name, callbacks=[_returning(ready)], unit=metric.unit or "")
    return reader


Function = tuple[str, int, str]   # pstats' (file, line, name)
Home = tuple[str, str]             # (otel_memory | SDK | other, file)


def _home(function: Function) -> Home | None:
    """Whose code ``function`` is; None for builtins and helpers (charged to their callers)."""
    for marker, owner in (("/otel_memory/", "otel_memory"), ("/opentelemetry/", "SDK")):
        if marker in function[0]:
            return owner, function[0].rsplit(marker, 1)[-1]
    return None


def profile_split(collect: Callable[[], None], collections: int) -> None:
    """cProfile of ``collections`` collections, its time split into otel_memory's and the SDK's.

    Time spent in builtins and helpers (os.read, isinstance, generated dataclass __init__, abc
    checks) is charged to the code that called them, in proportion to the calls it made.
    """
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(collections):
        collect()
    profiler.disable()
    stats: dict[Function, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    memo: dict[Function, dict[Home, float]] = {}

    def shares(function: Function, seen: frozenset[Function]) -> dict[Home, float]:
        home = _home(function)
        if home is not None:
            return {home: 1.0}
        if function[0] == __file__:
            return {}   # the benchmark's own loop is nobody's cost
        if function not in memo:
            callers = {caller: edge[1] for caller, edge in stats[function][4].items()
                       if caller not in seen}
            total = sum(callers.values())
            result: dict[Home, float] = {}
            for caller, calls in callers.items():
                for caller_home, share in shares(caller, seen | {function}).items():
                    result[caller_home] = result.get(caller_home, 0.0) + share * calls / total
            memo[function] = result if callers else {("other", function[2]): 1.0}
        return memo[function]

    spent: dict[Home, float] = {}
    for function, (_calls, _primitive, own_time, _cumulative, _callers) in stats.items():
        for home, share in shares(function, frozenset()).items():
            spent[home] = spent.get(home, 0.0) + own_time * share
    total = sum(spent.values())
    print(f"    profile of {collections} collections (cProfile, which inflates Python calls; "
          "shares of the profiled time, builtins charged to their callers):")
    for owner in ("otel_memory", "SDK", "other"):
        files = sorted(((file.removeprefix("sdk/metrics/_internal/"), seconds)
                        for (who, file), seconds in spent.items() if who == owner),
                       key=lambda item: -item[1])
        if sum(seconds for _file, seconds in files) >= total / 200:
            detail = ", ".join(f"{file} {100 * seconds / total:.0f}%" for file, seconds in files[:4])
            print(f"      {owner:11s} {100 * sum(t for _f, t in files) / total:3.0f}%: {detail}")


def cheapest_layout(points: int) -> InMemoryMetricReader:
    """A reader exporting ``points`` gauge points from one instrument, one attribute each: the
    least the SDK spends on that many points, whatever the instruments say."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("cheapest")
    ready = [Observation(float(i), {"n": i}) for i in range(points)]
    meter.create_observable_gauge("points", callbacks=[_returning(ready)])
    return reader


def _timed_collections(readers: dict[str, InMemoryMetricReader], collections: int,
                       timeout_ms: float, new_cycle: Callable[[], None]) -> dict[str, float]:
    """Median microseconds of one collection by each reader, collected in turn (the order
    rotating); ``new_cycle()`` runs before each of "ours" (outside the timed part)."""
    names = list(readers)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for index in range(20 + collections):     # the first 20 rounds warm up
        for name in names[index % len(names):] + names[:index % len(names)]:
            if name == "ours":
                new_cycle()
            began = time.perf_counter()
            readers[name].collect(timeout_millis=timeout_ms)
            if index >= 20:
                timings[name].append(time.perf_counter() - began)
    return {name: statistics.median(timings[name]) * 1e6 for name in names}


def collection_cost(collections: int) -> None:
    ours_reader, peer_reader = InMemoryMetricReader(), InMemoryMetricReader()
    ours_provider = MeterProvider(metric_readers=[ours_reader])
    peer_provider = MeterProvider(metric_readers=[peer_reader])
    manager = MemoryManager(
        MemoryManagementConfig(monitor_config=MemoryLimitConfig(monitoring_interval_ms=3_600_000),
                               enable_leak_detection=False),
        meter_provider=ours_provider)
    manager.initialize()
    peer = SystemMetricsInstrumentor(config=PEER_MEMORY_AND_GC)
    peer.instrument(meter_provider=peer_provider)
    alone_reader = sdk_alone(ours_reader.get_metrics_data())
    try:
        (ours_points, ours_metrics), (peer_points, peer_metrics) = (
            _points(ours_reader), _points(peer_reader))
        alone_points, _ = _points(alone_reader)
        assert alone_points == ours_points, "the SDK-alone replay must export our points"

        cheapest_reader = cheapest_layout(ours_points)
        take = min(timeit.repeat(manager.sampler.take, number=200, repeat=5)) / 200 * 1e6
        for label, timeout_ms in (("the export loop of a PeriodicExportingMetricReader (30 s "
                                   "timeout)", 30_000.0), ("a Prometheus scrape (10 s timeout)", 10_000.0)):
            readers = {"ours": ours_reader, "peer": peer_reader, "alone": alone_reader,
                       "cheapest": cheapest_reader}
            us = _timed_collections(readers, collections, timeout_ms, manager.sampler.invalidate)
            print(f"(a) one collection in {label}, median of {collections} (collected in turn):")
            print(f"    otel_memory full default set     {us['ours']:6.0f} us  ({ours_points} "
                  f"points, {ours_metrics} metrics)")
            print(f"    system-metrics memory+GC set     {us['peer']:6.0f} us  ({peer_points} "
                  f"points, {peer_metrics} metrics)")
            print(f"    the SDK alone, our points        {us['alone']:6.0f} us  (ready-made "
                  "Observations: the floor for exporting them)")
            print(f"    the SDK, {ours_points} points of one gauge  {us['cheapest']:6.0f} us  (its "
                  "cheapest layout for as many points)")
            print(f"    whole collection: ratio ours/peer = {us['ours'] / us['peer']:.3f}   (goal "
                  f"<= 1.0); the SDK alone/peer = {us['alone'] / us['peer']:.3f}")
            per_point = {name: us[name] / (peer_points if name == "peer" else ours_points)
                         for name in us}
            print(f"    per exported point: ours {per_point['ours']:.1f} us, peer "
                  f"{per_point['peer']:.1f} us; ratio {per_point['ours'] / per_point['peer']:.3f}   "
                  f"(goal <= 0.5); the SDK alone {per_point['alone'] / per_point['peer']:.3f}, "
                  f"the SDK's cheapest layout {per_point['cheapest'] / per_point['peer']:.3f}")
            print(f"    otel_memory's own work: {us['ours'] - us['alone']:.0f} us a collection, of "
                  f"which its one shared sample {take:.0f} us; the SDK's {us['alone']:.0f} us; "
                  f"ours/the SDK alone = {us['ours'] / us['alone']:.3f}")

        def ours() -> None:
            manager.sampler.invalidate()
            ours_reader.collect(timeout_millis=30_000)

        profile_split(ours, collections)
    finally:
        peer.uninstrument()
        manager.shutdown()
        ours_provider.shutdown()
        peer_provider.shutdown()


def workload(seconds: float) -> tuple[int, float, float]:
    """Allocation-heavy work (many short-lived containers, so many gen-0 collections).

    Returns (units of work done, wall seconds, process CPU seconds). Process CPU time includes
    the monitor and export threads, so it charges all of otel_memory's work to the run while
    staying out of the way of other processes competing for this machine's cores.
    """
    done = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    deadline = wall0 + seconds
    kept: list[object] = []
    while time.perf_counter() < deadline:
        for _ in range(100):
            row = [{"id": i, "tags": (i, str(i))} for i in range(20)]
            kept.append(row)
            if len(kept) > 500:
                kept.clear()
        done += 1
    return done, time.perf_counter() - wall0, time.process_time() - cpu0


def _exporting_app() -> tuple[InMemoryMetricExporter, MeterProvider, MemoryManager]:
    """An application exporting every second, and a manager ticking every second (not started)."""
    exporter = InMemoryMetricExporter()
    provider = MeterProvider(metric_readers=[
        PeriodicExportingMetricReader(exporter, export_interval_millis=1000)])
    manager = MemoryManager(
        MemoryManagementConfig(monitor_config=MemoryLimitConfig(monitoring_interval_ms=1000),
                               enable_leak_detection=False),
        meter_provider=provider)
    return exporter, provider, manager


def _run(seconds: float, *, with_manager: bool) -> tuple[int, float, float]:
    """One run of the workload in an application that exports metrics every second.

    Both kinds of run have the same SDK MeterProvider with a 1 s PeriodicExportingMetricReader
    (in-memory exporter), made and shut down outside the timed part; only "with" adds the
    MemoryManager (1 s monitoring interval), so the difference is what the manager costs.
    """
    exporter, provider, manager = _exporting_app()
    if with_manager:
        manager.initialize()
    try:
        return workload(seconds)
    finally:
        manager.shutdown()
        provider.shutdown()
        if with_manager:
            assert len(exporter.batches) >= int(seconds) - 1, "the exporter did not run every second"


def throughput(pairs: int, seconds: float) -> float:
    """Runs (b); returns the workload's gen-0 collections per second."""
    counts_before = [s["collections"] for s in gc.get_stats()]
    results: dict[str, list[tuple[int, float, float]]] = {"with": [], "without": []}
    workload(0.3)   # warm up
    for index in range(pairs):
        runs = ["without", "with"] if index % 2 == 0 else ["with", "without"]
        for run in runs:
            results[run].append(_run(seconds, with_manager=run == "with"))
    collections = [s["collections"] - b for s, b in zip(gc.get_stats(), counts_before, strict=True)]
    total_wall = sum(wall for runs in results.values() for _, wall, _ in runs)

    def rates(run: str, index: int) -> list[float]:
        return [result[0] / result[index] for result in results[run]]

    print(f"(b) allocation-heavy workload, {pairs} interleaved pairs of {seconds:g} s "
          f"({collections[0] / total_wall:.0f} gen-0 collections/s):")
    for label, index in (("per CPU second ", 2), ("per wall second", 1)):
        with_rates, without_rates = rates("with", index), rates("without", index)
        pair_ratios = [w / o for w, o in zip(with_rates, without_rates, strict=True)]
        print(f"    {label}: without {statistics.median(without_rates):8.1f}, with "
              f"{statistics.median(with_rates):8.1f} units/s; ratio with/without = "
              f"{statistics.median(pair_ratios):.4f} (median of pairs), "
              f"{max(with_rates) / max(without_rates):.4f} (best runs)")
    print("    goal >= 0.99 (1 s monitor interval, 1 s PeriodicExportingMetricReader); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return float(collections[0] / total_wall)


def accounted_overhead(collections_per_s: float) -> None:
    """The same overhead from its parts, each measured in isolation (robust on a busy machine).

    gc callback per collection (min of repeats of gc.collect(0) with and without it) times the
    workload's collection rate, plus the CPU the monitor and export threads use per second
    while the pause buffers fill at that rate.
    """
    def per_collection() -> float:
        return min(timeit.repeat("collect(0)", number=200_000, repeat=5,
                                 globals={"collect": gc.collect})) / 200_000

    base = per_collection()
    watch = GcPauseWatch()
    watch.install()
    with_watch = per_collection()
    watch.uninstall()
    callback_s = max(0.0, with_watch - base)

    _exporter, provider, manager = _exporting_app()
    manager.initialize()
    try:
        seconds = 5
        buffers = manager.gc_watch._buffers
        cpu0 = time.process_time()
        for _ in range(seconds * 10):   # pauses arrive at the workload's rate, as in (b)
            for _ in range(int(collections_per_s / 10)):
                buffers[0].append(0.0001)
            time.sleep(0.1)
        background_s = (time.process_time() - cpu0) / seconds
    finally:
        manager.shutdown()
        provider.shutdown()
    overhead = callback_s * collections_per_s + background_s
    print("(b') the same overhead from parts measured in isolation:")
    print(f"    gc callback {callback_s * 1e6:.3f} us/collection x {collections_per_s:.0f}/s = "
          f"{callback_s * collections_per_s * 1000:.2f} ms/s; monitor + export threads "
          f"{background_s * 1000:.2f} ms/s")
    print(f"    expected ratio with/without = {1 / (1 + overhead):.4f}   (goal >= 0.99)")


# Ticks and exports are left out here: valgrind runs ~50x slower, so 1 s timers would fire ~50x
# too often per unit of work. Their cost is measured in (b') instead.
_INSTRUCTIONS_APP = """
import sys
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
sys.path.insert(0, sys.argv[3])
from bench_runtime import workload_units
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.manager import MemoryManager
provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
manager = MemoryManager(MemoryManagementConfig(
    monitor_config=MemoryLimitConfig(monitoring_interval_ms=3_600_000), enable_leak_detection=False),
    meter_provider=provider)
if sys.argv[1] == "with":
    manager.initialize()
workload_units(int(sys.argv[2]))
"""


def workload_units(units: int) -> None:
    """The workload of (b) for a fixed number of units."""
    kept: list[object] = []
    for _ in range(units):
        for _ in range(100):
            kept.append([{"id": i, "tags": (i, str(i))} for i in range(20)])
            if len(kept) > 500:
                kept.clear()


def instructions(units: int) -> None:
    """(c) The main thread's instructions under valgrind's callgrind: noise-free, unlike time."""
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("(c) skipped: valgrind is not installed")
        return
    here = str(Path(__file__).resolve().parent)
    counts: dict[tuple[str, int], int] = {}
    with tempfile.TemporaryDirectory() as directory:
        app = Path(directory) / "app.py"
        app.write_text(_INSTRUCTIONS_APP)
        for run in ("without", "with"):
            for size in (0, units):
                out = Path(directory) / f"{run}.{size}"
                subprocess.run([valgrind, "--tool=callgrind", "--separate-threads=yes",
                                f"--callgrind-out-file={out}", sys.executable, str(app), run,
                                str(size), here], check=True, capture_output=True)
                main_thread = Path(directory) / f"{run}.{size}-01"
                text = main_thread.read_text(errors="replace")
                counts[run, size] = int(text.split("summary: ")[1].split()[0])
    work = {run: counts[run, units] - counts[run, 0] for run in ("without", "with")}
    print(f"(c) main-thread instructions for {units} units of (b)'s workload (callgrind):")
    print(f"    without {work['without'] / 1e6:.1f} M, with {work['with'] / 1e6:.1f} M; "
          f"ratio without/with = {work['without'] / work['with']:.4f}")
    print("    (everything the manager costs the application's thread, the gc callback above all; "
          "ticks and exports run on their own threads: see (b'))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--collections", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--only", choices=["a", "b"])
    parser.add_argument("--instructions", type=int, metavar="UNITS", default=0,
                        help="also count instructions under valgrind (c), e.g. 60")
    args = parser.parse_args()
    # the peer runs in this process: without this our shared families would be left to it
    # (MEMORY_SEMCONV_SIGNALS=auto) and the comparison would count fewer of our points
    os.environ["MEMORY_SEMCONV_SIGNALS"] = "on"
    if args.only != "b":
        collection_cost(args.collections)
    if args.only != "a":
        accounted_overhead(throughput(args.pairs, args.seconds))
    if args.instructions:
        instructions(args.instructions)


if __name__ == "__main__":
    main()
