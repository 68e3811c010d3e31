"""The demo: a small instrumented workload with a pool, a cache and a slow deliberate leak.

It serves Prometheus metrics on 127.0.0.1:9464, exports OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
is set, and prints a table of the key signals every few seconds until Ctrl-C (or --duration).

Example::

    otel-memory demo --port 9464 --interval 5 --limit-mb 512
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from . import catalog as c
from .config import MemoryLimitConfig, MemoryManagementConfig
from .manager import MemoryManager


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs with.

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


class LeakedRecord:
    """What the demo's deliberate leak accumulates."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


_LEAKED: list[LeakedRecord] = []
LEAK_CAP = 200_000


def _providers(options: DemoOptions) -> tuple[MeterProvider, TracerProvider, InMemoryMetricReader, Any]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    resource = Resource.create({
        "service.name": os.environ.get("OTEL_SERVICE_NAME", "otel-memory-demo"),
        "service.instance.id": str(uuid.uuid4()),
    })
    table_reader = InMemoryMetricReader()
    readers: list[MetricReader] = [table_reader, PrometheusMetricReader()]
    server, _thread = start_http_server(options.port, addr=options.host)
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


def _values(reader: InMemoryMetricReader) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    data = reader.get_metrics_data()
    values: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                values[metric.name] = [
                    (float(getattr(p, "value", getattr(p, "sum", 0.0))), dict(p.attributes or {}))
                    for p in metric.data.data_points]
    return values


def _total(values: dict[str, list[tuple[float, dict[str, Any]]]], spec: c.MetricSpec,
           **where: str) -> float:
    return sum(v for v, attributes in values.get(spec.name, [])
               if all(attributes.get(k) == w for k, w in where.items()))


def _source(values: dict[str, list[tuple[float, dict[str, Any]]]]) -> str:
    points = values.get(c.MEMORY_LIMIT.name, [])
    return str(points[0][1].get(c.ATTR_LIMIT_SOURCE, "?")) if points else "?"


def render_table(values: dict[str, list[tuple[float, dict[str, Any]]]]) -> str:
    """The compact table of key signals, from one collection of the demo's reader."""
    mb = 1024 * 1024
    hits = _total(values, c.MEMORY_CACHE_REQUESTS, **{c.ATTR_CACHE_RESULT: "hit"})
    requests = _total(values, c.MEMORY_CACHE_REQUESTS)
    level = int(_total(values, c.MEMORY_PRESSURE_LEVEL))
    rows = [
        ("rss / peak", f"{_total(values, c.MEMORY_ALLOCATED) / mb:8.1f} / "
                       f"{_total(values, c.MEMORY_PEAK) / mb:.1f} MB"),
        ("limit / utilization", f"{_total(values, c.MEMORY_LIMIT) / mb:8.0f} MB ({_source(values)}) / "
                                f"{_total(values, c.MEMORY_UTILIZATION):.1f} %"),
        ("pressure", ("LOW", "MODERATE", "HIGH", "CRITICAL")[min(max(level, 0), 3)]),
        ("gc collections / pause", f"{_total(values, c.CPYTHON_GC_COLLECTIONS):8.0f} / "
                                   f"{_total(values, c.MEMORY_GC_PAUSE_TIME) * 1000:.1f} ms"),
        ("pool borrows / size / max", f"{_total(values, c.MEMORY_POOL_BORROWS):8.0f} / "
                                      f"{_total(values, c.MEMORY_POOL_SIZE):.0f} / "
                                      f"{_total(values, c.MEMORY_POOL_MAX):.0f}"),
        ("cache hit ratio / entries", f"{(hits / requests if requests else 0.0):8.2f} / "
                                      f"{_total(values, c.MEMORY_CACHE_ENTRIES):.0f}"),
        ("cache bytes", f"{_total(values, c.MEMORY_CACHE_USAGE) / mb:8.2f} MB"),
        ("trend growth", f"{_total(values, c.MEMORY_TREND_GROWTH_RATE) / 1024:8.1f} KB/s"),
        ("leak suspects", f"{_total(values, c.MEMORY_LEAK_SUSPECTS):8.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _workload(manager: MemoryManager, stop: threading.Event, options: DemoOptions) -> None:
    from .cache import SmartCache

    pool = manager.create_pool("demo_buffers", lambda: bytearray(64 * 1024), 8)
    cache: SmartCache[int, bytes] = SmartCache(manager, 1000, 50, 300, name="demo_cache")
    last_leak = time.monotonic()
    while not stop.is_set():
        with pool.borrow() as buffer:
            buffer[0:4] = b"demo"
        key = int(random.paretovariate(1.2)) % 2000
        cache.get_or_load(key, lambda k: os.urandom(512 + k % 2048))
        batch = [{"id": i, "tags": [str(i)] * 3} for i in range(200)]
        del batch
        if options.leak and time.monotonic() - last_leak >= options.leak_interval_s:
            last_leak = time.monotonic()
            if len(_LEAKED) < LEAK_CAP:   # a slow leak that stops after ~80 MB, about 8 minutes
                _LEAKED.extend(LeakedRecord(os.urandom(256)) for _ in range(1000))
        stop.wait(0.002)


def run(options: DemoOptions, out: TextIO, *, ready: Callable[[int], None] | None = None) -> None:
    """Run the demo until Ctrl-C, SIGTERM or ``duration_s``; prints the table every interval."""
    meter_provider, tracer_provider, table_reader, server = _providers(options)
    port = int(server.server_port)
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=options.limit_mb,
                                         monitoring_interval_ms=max(100, int(options.interval_s * 500))),
        leak_detection_interval_s=max(1.0, options.interval_s))
    manager = MemoryManager(config, meter_provider=meter_provider, tracer_provider=tracer_provider)
    manager.initialize()
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = threading.Thread(target=_workload, args=(manager, stop, options), daemon=True)
    worker.start()
    print(f"otel-memory demo: Prometheus metrics on http://{options.host}:{port}/metrics "
          f"(Ctrl-C to stop)", file=out, flush=True)
    if ready is not None:
        ready(port)
    started = time.monotonic()
    try:
        while not stop.wait(options.interval_s):
            print(render_table(_values(table_reader)) + "\n", file=out, flush=True)
            if options.duration_s and time.monotonic() - started >= options.duration_s:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        worker.join(timeout=5)
        manager.shutdown()
        tracer_provider.shutdown()
        meter_provider.shutdown()
        server.shutdown()   # the metrics endpoint goes with the demo (run() may be called in-process)
        server.server_close()
