"""Benchmark: the memory otel-memory itself costs an application.

Two applications run the same simulated 10 minutes in fresh interpreters: an SDK
MeterProvider (in-memory reader) and TracerProvider, a heap of some 100k objects of a few
hundred types, and a workload that allocates and frees between steps. "sdk" has only the
OpenTelemetry SDK; "otel_memory" adds ``otel_memory.instrument()`` with the default
configuration (leak detector included). The 10 minutes are 120 steps of the default 5 s
monitoring interval, each one monitoring tick; 100 of them end with a collection of every
metric and 20 with a leak check (as often as a 30 s leak interval, twice the default).

Each application runs twice per pair, once measuring RSS (/proc/self/statm, after
gc.collect()) and once with tracemalloc started before the first import (the bytes Python
allocated and still holds, imports included); tracemalloc's own bookkeeping is kept out of the
RSS runs. Pairs alternate their order; the medians of the differences are printed.
otel_memory's bytecode is compiled first, as ``pip install`` does (the SDK's is): an editable
install run with PYTHONDONTWRITEBYTECODE would compile every module at each start, and the
compiler's memory would be charged to the import.
Goal: otel_memory - sdk <= 2 MB (RSS and tracemalloc).

Run: ``.venv/bin/python benchmarks/bench_footprint.py [--pairs 3]`` (about 30 s)
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

MB = 1024 * 1024
STEPS = 120            # 10 minutes of 5 s monitoring ticks
COLLECT_EVERY = 6      # steps 1-5 of every 6 end with a collection: 100 collections
LEAK_CHECK_EVERY = 6   # step 0 of every 6 ends with a leak check: 20 checks


def _rss() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _application_heap() -> list[object]:
    """A service-like heap: modules of a web app and ~100k objects that live for the run."""
    import asyncio  # noqa: F401 - loaded for the types a real service has
    import decimal
    import email.message  # noqa: F401
    import http.server  # noqa: F401
    import json as json_module  # noqa: F401
    import logging.handlers  # noqa: F401
    import urllib.request  # noqa: F401
    import uuid

    class Order:
        def __init__(self, number: int) -> None:
            self.number = number
            self.lines = [{"sku": f"sku-{number % 97}", "quantity": number % 5}]
            self.total = decimal.Decimal(number) / 7

    heap: list[object] = [Order(i) for i in range(20_000)]
    heap.extend(uuid.UUID(int=i) for i in range(10_000))
    return heap


def _workload(step: int, kept: list[object]) -> None:
    """Allocation between two ticks; a slow, bounded growth as a long-lived cache would have."""
    for _ in range(200):
        rows = [{"id": i, "tags": (i, str(i))} for i in range(20)]
        del rows
    kept.append([step] * 100)
    if len(kept) > 60:
        del kept[:30]


def child(variant: str, measure: str) -> dict[str, float]:
    """One application run; returns its memory in bytes at the checkpoints."""
    if measure == "traced":
        import tracemalloc

        tracemalloc.start()
    import gc

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    def memory() -> float:
        gc.collect()
        if measure == "traced":
            import tracemalloc

            return float(tracemalloc.get_traced_memory()[0])
        return float(_rss())

    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Discard()))
    heap = _application_heap()
    result = {"start": memory()}
    manager = None
    if variant == "otel_memory":
        import otel_memory

        result["imported"] = memory()
        manager = otel_memory.instrument(meter_provider=meter_provider,
                                         tracer_provider=tracer_provider)
        assert manager.leak_detector is not None, "the default configuration detects leaks"
    else:
        result["imported"] = result["start"]
    result["set_up"] = memory()
    kept: list[object] = []
    points = 0
    for step in range(STEPS):
        _workload(step, kept)
        if manager is not None:
            manager.check_pressure()
            if step % LEAK_CHECK_EVERY == 0:
                manager.leak_detector.check()
        if step % COLLECT_EVERY:
            if manager is not None:
                manager.sampler.invalidate()   # collections are seconds apart
            data = reader.get_metrics_data()
            if data is not None:
                points += sum(len(m.data.data_points) for rm in data.resource_metrics
                              for sm in rm.scope_metrics for m in sm.metrics)
    result["end"] = memory()
    result["points"] = points
    del heap
    return result


def _run_child(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])   # type: ignore[no-any-return]


def setup_breakdown(top: int) -> dict[str, float]:
    """Bytes allocated by ``import otel_memory`` and ``instrument()`` (the modules it loads
    included) and still held, by the otel_memory module whose code was running: the innermost
    otel_memory frame of each trace."""
    import gc
    import tracemalloc

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    tracer_provider = TracerProvider()
    heap = _application_heap()
    gc.collect()
    tracemalloc.start(64)   # from here on: only what otel_memory allocates is traced
    import otel_memory

    manager = otel_memory.instrument(meter_provider=meter_provider, tracer_provider=tracer_provider)
    gc.collect()
    by_module: dict[str, float] = {}
    for stat in tracemalloc.take_snapshot().statistics("traceback"):
        ours = [frame.filename for frame in stat.traceback if "/otel_memory/" in frame.filename]
        module = ours[-1].rsplit("/otel_memory/", 1)[-1] if ours else "(outside otel_memory)"
        by_module[module] = by_module.get(module, 0.0) + stat.size
    tracemalloc.stop()
    manager.shutdown()
    del heap
    return dict(sorted(by_module.items(), key=lambda item: -item[1])[:top])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(setup_breakdown(8) if args.child == ["setup"] else child(*args.child)))
        return
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "otel_memory"), quiet=1)
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for index in range(args.pairs):
        for measure in ("rss", "traced"):
            variants = ["sdk", "otel_memory"] if index % 2 == 0 else ["otel_memory", "sdk"]
            for variant in variants:
                results.setdefault((variant, measure), []).append(_run_child(variant, measure))
    collections = STEPS - STEPS // COLLECT_EVERY
    ours_points = statistics.median(r["points"] for r in results["otel_memory", "rss"])
    sdk_end = statistics.median(r["end"] for r in results["sdk", "rss"])
    print(f"footprint: {STEPS} ticks (10 min at 5 s), {collections} collections "
          f"({ours_points / collections:.0f} points each), {STEPS // LEAK_CHECK_EVERY} leak checks; "
          f"the sdk-only application ends at {sdk_end / MB:.1f} MB RSS")
    print(f"    what otel_memory adds (median of {args.pairs} pairs)   RSS       tracemalloc")
    rows = (("import otel_memory", "start", "imported"), ("instrument()", "imported", "set_up"),
            ("10 minutes running", "set_up", "end"), ("total", "start", "end"))
    for label, begin, end in rows:
        cells = []
        for measure in ("rss", "traced"):
            pairs = zip(results["otel_memory", measure], results["sdk", measure], strict=True)
            cells.append(statistics.median(
                (ours[end] - ours[begin]) - (sdk[end] - sdk[begin]) for ours, sdk in pairs) / MB)
        print(f"      {label:39s} {cells[0]:6.2f} MB  {cells[1]:6.2f} MB")
    print("    goal: total <= 2 MB")
    print("    tracemalloc bytes of import otel_memory + instrument(), by the otel_memory module "
          "running (the modules it loads included):")
    for module, size in _run_child("setup").items():
        print(f"      {module:39s} {size / MB:6.2f} MB")


if __name__ == "__main__":
    main()
