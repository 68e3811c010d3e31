"""The demo: a small instrumented workload with a pool, a cache and a deliberate leak.

It serves Prometheus metrics on 127.0.0.1:9464, exports OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
is set, and prints a table of the key signals every few seconds until Ctrl-C (or --duration):
the time, each value with its change since the last table, and the leak suspects by name with
their growth. The manager's log lines (pressure changes, suspects) are printed as they happen.

The leak follows the limit. With ``--limit-mb`` it leads usage from where it starts to just past
the critical threshold in ``ramp_s`` (90 s) and holds it there, below the limit: pressure climbs
LOW, MODERATE, HIGH, CRITICAL within about two minutes whatever the limit. Without a limit it is
a slow leak (1000 records every 2.5 s, about 80 MB over 8 minutes) for the leak detector.

Needs the ``demo`` extra (the SDK and the Prometheus and OTLP exporters).

Example::

    otel-memory demo --port 9464 --interval 5 --limit-mb 128
"""

from __future__ import annotations

import errno
import logging
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from . import catalog as c
from .config import MB, MemoryLimitConfig, MemoryManagementConfig
from .manager import MemoryManager

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from .leak import LeakSuspect

Values = dict[str, list[tuple[float, dict[str, Any]]]]

#: Records the slow leak (no limit) adds at most: about 80 MB.
LEAK_CAP = 200_000
#: Bytes of one record of the limit-following leak, and the most it adds per step.
RECORD_BYTES = 1024
STEP_BYTES = 2 * MB


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs with; ``ramp_s``: how long the limit-following leak takes to reach
    the critical threshold.

    Example::

        DemoOptions(port=0, interval_s=1.0, duration_s=5.0)
    """

    host: str = "127.0.0.1"
    port: int = 9464
    interval_s: float = 5.0
    duration_s: float = 0.0
    limit_mb: float | None = None
    leak: bool = True
    leak_interval_s: float = 2.5
    ramp_s: float = 90.0


class PortInUse(RuntimeError):
    """The metrics port is taken (another demo, or an exporter on 9464)."""


class LeakedRecord:
    """What the demo's deliberate leak accumulates."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


_LEAKED: list[LeakedRecord] = []


@dataclass(frozen=True)
class LeakPlan:
    """The usage the limit-following leak aims at, ``elapsed_s`` after the start.

    From ``start`` bytes it rises in a straight line to ``target`` (just past the critical
    threshold, below the limit) over ``ramp_s``, then stays.

    Example::

        plan = LeakPlan.for_limit(start=60 * MB, limit=128 * MB, critical=112 * MB, ramp_s=90)
        plan.wanted(45.0)    # half way from 60 MB to the target
    """

    start: int
    target: int
    ramp_s: float

    @classmethod
    def for_limit(cls, *, start: int, limit: int, critical: int, ramp_s: float) -> LeakPlan:
        """Past ``critical`` by 2% of the limit, never above 97% of it; never below ``start``."""
        target = min(critical + limit // 50, limit * 97 // 100)
        return cls(start=start, target=max(start, target), ramp_s=max(ramp_s, 0.001))

    def wanted(self, elapsed_s: float) -> int:
        """The usage the leak should have brought the process to by now."""
        share = min(max(elapsed_s / self.ramp_s, 0.0), 1.0)
        return self.start + int((self.target - self.start) * share)


def _providers(options: DemoOptions) -> tuple[MeterProvider, TracerProvider, InMemoryMetricReader, Any]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(options.port, addr=options.host)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(f"{options.host}:{options.port} is already in use") from None
        raise
    resource = Resource.create({
        "service.name": os.environ.get("OTEL_SERVICE_NAME", "otel-memory-demo"),
        "service.instance.id": str(uuid.uuid4()),
    })
    table_reader = InMemoryMetricReader()
    readers: list[MetricReader] = [table_reader, PrometheusMetricReader()]
    tracer_provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
        readers.append(PeriodicExportingMetricReader(
            OTLPMetricExporter(), export_interval_millis=int(options.interval_s * 1000)))
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return MeterProvider(resource=resource, metric_readers=readers), tracer_provider, table_reader, server


def _values(reader: InMemoryMetricReader) -> Values:
    data = reader.get_metrics_data()
    values: Values = {}
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                values[metric.name] = [
                    (float(getattr(p, "value", getattr(p, "sum", 0.0))), dict(p.attributes or {}))
                    for p in metric.data.data_points]
    return values


def _total(values: Values, spec: c.MetricSpec, **where: str) -> float:
    return sum(v for v, attributes in values.get(spec.name, [])
               if all(attributes.get(k) == w for k, w in where.items()))


def _source(values: Values) -> str:
    points = values.get(c.MEMORY_LIMIT.name, [])
    return str(points[0][1].get(c.ATTR_LIMIT_SOURCE, "?")) if points else "?"


LEVELS = ("LOW", "MODERATE", "HIGH", "CRITICAL")


@dataclass(frozen=True)
class _Row:
    name: str
    text: str
    number: float | None = None     # what the change since the last table is computed from
    change: str = "{:+.0f}"         # how that change is written


def _rows(values: Values) -> list[_Row]:
    mb = 1024 * 1024
    hits = _total(values, c.MEMORY_CACHE_REQUESTS, **{c.ATTR_CACHE_RESULT: "hit"})
    requests = _total(values, c.MEMORY_CACHE_REQUESTS)
    level = int(_total(values, c.MEMORY_PRESSURE_LEVEL))
    rss = _total(values, c.MEMORY_ALLOCATED)
    utilization = _total(values, c.MEMORY_UTILIZATION)
    collections = _total(values, c.CPYTHON_GC_COLLECTIONS)
    borrows = _total(values, c.MEMORY_POOL_BORROWS)
    entries = _total(values, c.MEMORY_CACHE_ENTRIES)
    cache_bytes = _total(values, c.MEMORY_CACHE_USAGE)
    suspects = _total(values, c.MEMORY_LEAK_SUSPECTS)
    return [
        _Row("rss / peak", f"{rss / mb:8.1f} / {_total(values, c.MEMORY_PEAK) / mb:.1f} MB", rss / mb,
             "{:+.1f} MB"),
        _Row("limit / utilization", f"{_total(values, c.MEMORY_LIMIT) / mb:8.0f} MB ({_source(values)}) / "
                                    f"{utilization:.1f} %", utilization, "{:+.1f} %"),
        _Row("pressure", f"{LEVELS[min(max(level, 0), 3)]:>8}"),
        _Row("gc collections / pause",
             f"{collections:8.0f} / {_total(values, c.MEMORY_GC_PAUSE_TIME) * 1000:.1f} ms", collections),
        _Row("pool borrows / size / max", f"{borrows:8.0f} / {_total(values, c.MEMORY_POOL_SIZE):.0f} / "
                                          f"{_total(values, c.MEMORY_POOL_MAX):.0f}", borrows),
        _Row("cache hit ratio / entries", f"{(hits / requests if requests else 0.0):8.2f} / {entries:.0f}",
             entries),
        _Row("cache bytes", f"{cache_bytes / mb:8.2f} MB", cache_bytes / mb, "{:+.2f} MB"),
        _Row("trend growth", f"{_total(values, c.MEMORY_TREND_GROWTH_RATE) / 1024:8.1f} KB/s"),
        _Row("leak suspects", f"{suspects:8.0f}", suspects),
    ]


def _suspect_lines(suspects: Sequence[LeakSuspect]) -> list[str]:
    """One line per suspect (the same description once), with its growth; names only."""
    seen: dict[str, LeakSuspect] = {}
    for suspect in suspects:
        seen.setdefault(suspect.describe(), suspect)
    return [f"  {name}: {suspect.growth_bytes_per_s / 1024:+.1f} KB/s, {suspect.count_delta:+d} objects, "
            f"{suspect.size_delta / (1024 * 1024):+.1f} MB" for name, suspect in seen.items()]


def render_table(values: Values, *, previous: dict[str, float] | None = None,
                 suspects: Sequence[LeakSuspect] = (), at: float | None = None,
                 elapsed_s: float | None = None) -> tuple[str, dict[str, float]]:
    """The table of key signals from one collection of the demo's reader, and the numbers the
    next table computes its changes from.

    ``previous``: those numbers of the last table (None for the first: no change column);
    ``suspects``: the leak detector's, shown by name; ``at``: the Unix time in the heading.
    """
    rows = _rows(values)
    width = max(len(row.name) for row in rows)
    text_width = max(len(row.text) for row in rows)
    stamp = time.strftime("%H:%M:%S", time.localtime(time.time() if at is None else at))
    heading = f"--- {stamp}" + (f" (+{elapsed_s:.0f} s)" if elapsed_s is not None else "") + " ---"
    lines = [heading]
    numbers: dict[str, float] = {}
    for row in rows:
        line = f"{row.name:<{width}}  {row.text:<{text_width}}"
        if row.number is not None:
            numbers[row.name] = row.number
            if previous is not None and row.name in previous:
                line += "  " + row.change.format(row.number - previous[row.name])
        lines.append(line.rstrip())
    lines += _suspect_lines(suspects)
    return "\n".join(lines), numbers


def _leak_step(manager: MemoryManager, plan: LeakPlan | None, started: float, options: DemoOptions,
               last_leak: float) -> float:
    """Grow the leak if it is due; returns when it last grew."""
    now = time.monotonic()
    if plan is None:
        if now - last_leak >= options.leak_interval_s and len(_LEAKED) < LEAK_CAP:
            _LEAKED.extend(LeakedRecord(os.urandom(256)) for _ in range(1000))
            return now
        return last_leak
    if now - last_leak < 0.2:
        return last_leak
    usage = manager.usage_of(manager.sampler.current(max_age_s=0.0)) or 0
    missing = min(plan.wanted(now - started) - usage, STEP_BYTES)
    if missing > 0:
        _LEAKED.extend(LeakedRecord(os.urandom(RECORD_BYTES)) for _ in range(missing // RECORD_BYTES + 1))
    return now


def _workload(manager: MemoryManager, stop: threading.Event, options: DemoOptions,
              plan: LeakPlan | None) -> None:
    from .cache import SmartCache

    pool = manager.create_pool("demo_buffers", lambda: bytearray(64 * 1024), 8)
    cache: SmartCache[int, bytes] = SmartCache(manager, 1000, 50, 300, name="demo_cache")
    started = last_leak = time.monotonic()
    while not stop.is_set():
        with pool.borrow() as buffer:
            buffer[0:4] = b"demo"
        key = int(random.paretovariate(1.2)) % 2000
        cache.get_or_load(key, lambda k: os.urandom(512 + k % 2048))
        batch = [{"id": i, "tags": [str(i)] * 3} for i in range(200)]
        del batch
        if options.leak:
            last_leak = _leak_step(manager, plan, started, options, last_leak)
        stop.wait(0.002)


def _plan(manager: MemoryManager, options: DemoOptions) -> LeakPlan | None:
    if options.limit_mb is None or not options.leak:
        return None
    start = manager.usage_of(manager.sampler.current(max_age_s=0.0)) or 0
    return LeakPlan.for_limit(start=start, limit=manager.limit.bytes, critical=manager.thresholds.critical,
                              ramp_s=options.ramp_s)


def _log_to(out: TextIO) -> logging.Handler:
    """The manager's log lines (INFO and up) on ``out`` while the demo runs."""
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("otel_memory")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def run(options: DemoOptions, out: TextIO, *, ready: Callable[[int], None] | None = None) -> None:
    """Run the demo until Ctrl-C, SIGTERM or ``duration_s``; prints the table every interval.

    Raises PortInUse when the metrics port is taken.
    """
    meter_provider, tracer_provider, table_reader, server = _providers(options)
    port = int(server.server_port)
    print(f"otel-memory demo: Prometheus metrics on http://{options.host}:{port}/metrics "
          f"(Ctrl-C to stop)", file=out, flush=True)
    logger = logging.getLogger("otel_memory")
    level = logger.level
    handler = _log_to(out)
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=options.limit_mb,
                                         monitoring_interval_ms=max(100, int(options.interval_s * 500))),
        leak_detection_interval_s=max(1.0, options.interval_s))
    manager = MemoryManager(config, meter_provider=meter_provider, tracer_provider=tracer_provider)
    stop = threading.Event()
    worker: threading.Thread | None = None
    try:
        manager.initialize()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        plan = _plan(manager, options)
        worker = threading.Thread(target=_workload, args=(manager, stop, options, plan), daemon=True)
        worker.start()
        if plan is not None:
            print(f"otel-memory demo: the leak takes usage from {plan.start // MB} MB to "
                  f"{plan.target // MB} MB (critical threshold {manager.thresholds.critical // MB} MB, "
                  f"limit {manager.limit.bytes // MB} MB) in {options.ramp_s:.0f} s", file=out, flush=True)
        if ready is not None:
            ready(port)
        started = time.monotonic()
        previous: dict[str, float] | None = None
        while not stop.wait(options.interval_s):
            report = manager.leak_detector.latest_report() if manager.leak_detector else None
            table, previous = render_table(_values(table_reader), previous=previous,
                                           suspects=report.suspects if report else (),
                                           elapsed_s=time.monotonic() - started)
            print(table + "\n", file=out, flush=True)
            if options.duration_s and time.monotonic() - started >= options.duration_s:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if worker is not None:
            worker.join(timeout=5)
        manager.shutdown()
        tracer_provider.shutdown()
        meter_provider.shutdown()
        server.shutdown()   # the metrics endpoint goes with the demo (run() may be called in-process)
        server.server_close()
        logger.removeHandler(handler)
        logger.setLevel(level)
        _LEAKED.clear()
