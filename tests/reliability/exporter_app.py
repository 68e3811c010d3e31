"""The application of the exporter-down case, run as a subprocess of ``exporters.py``.

``python -m tests.reliability.exporter_app MODE SECONDS [exit|shutdown_worker]`` with MODE
``none`` (no export: the baseline), ``grpc`` or ``http`` (OTLP metrics and spans to the endpoint
of the standard OTEL_EXPORTER_OTLP_* variables, a closed port). It sets up a worker with
``init_worker()`` (manager, leak detector), a pool and a cache, runs a fixed piece of
application work in a loop for SECONDS, counting iterations in each second of the system's
monotonic clock (so the two copies of a pair count the same seconds) and sampling its RSS and
CPU time, prints one JSON line (iterations, RSS, CPU, the export warnings attempted and let
through per exporter), and ends with a plain exit or through ``shutdown_worker()``.

Example::

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \\
        python -m tests.reliability.exporter_app grpc 60
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from typing import Any

import psutil
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_memory import workers
from otel_memory.cache import SmartCache
from otel_memory.config import MemoryManagementConfig

_SIGNALS = ("metrics", "spans", "traces", "logs")


def exporter_of(record: logging.LogRecord) -> str:
    """Which exporter a record is about: its logger and, for a shared logger, the signal."""
    args = record.args if isinstance(record.args, tuple) else ()
    signal = next((a for a in args if isinstance(a, str) and a in _SIGNALS), "")
    return f"{record.name}:{signal}" if signal else record.name


class Count(logging.Filter):
    """Counts every warning of a logger before the limiter sees it (installed first)."""

    def __init__(self, into: Counter[str]) -> None:
        super().__init__()
        self.into = into

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.into[exporter_of(record)] += 1
        return True


class Keep(logging.Handler):
    """The warnings that reached the root logger, by exporter."""

    def __init__(self, into: Counter[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into[exporter_of(record)] += 1


def span_exporter(mode: str) -> Any:
    if mode == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter()


def main(mode: str, seconds: float) -> dict[str, Any]:
    attempted: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for name in workers.EXPORT_LOGGERS:
        logging.getLogger(name).addFilter(Count(attempted))
    logging.getLogger().addHandler(Keep(passed))
    tracer_provider = TracerProvider()
    if mode != "none":
        tracer_provider.add_span_processor(
            BatchSpanProcessor(span_exporter(mode), schedule_delay_millis=1000))
    trace.set_tracer_provider(tracer_provider)
    telemetry = workers.init_worker(
        config=MemoryManagementConfig(leak_detection_interval_s=max(2.0, seconds / 6)),
        readers=None if mode != "none" else list)
    manager = telemetry.manager
    pool = manager.create_pool("app.buffers", lambda: bytearray(4096), 4)
    cache: SmartCache[int, bytes] = SmartCache(manager, 2_000, 16, 30, name="app.cache")
    process = psutil.Process()
    cpu_began, main_began = process.cpu_times(), time.thread_time()
    per_second: dict[int, int] = {}   # whole seconds of the system-wide monotonic clock: the
    rss: list[int] = []                # pair's buckets line up
    began = time.monotonic()
    second = int(began)
    done = 0
    iteration = 0
    while True:
        for _ in range(50):
            with pool.borrow() as buffer:
                document = json.dumps({"id": iteration, "items": list(range(iteration % 20))}).encode()
                buffer[:len(document)] = document
            key = iteration % 4_000
            if cache.get(key) is None:
                cache.insert(key, document)
            iteration += 1
        now = time.monotonic()
        if int(now) != second:
            per_second[second] = iteration - done
            done = iteration
            second = int(now)
            rss.append(process.memory_info().rss)
            if now - began >= seconds:
                break
    cpu = process.cpu_times()
    cpu_total = cpu.user + cpu.system - cpu_began.user - cpu_began.system
    cpu_main = time.thread_time() - main_began
    limiter = workers.limit_export_logs()
    return {"mode": mode, "iterations": iteration, "per_second": per_second, "rss": rss,
            "elapsed_s": time.monotonic() - began, "cpu_total_s": cpu_total, "cpu_main_s": cpu_main,
            "attempted": dict(attempted), "passed": dict(passed), "held_back": limiter.held_back,
            "pid": os.getpid()}


if __name__ == "__main__":
    result = main(sys.argv[1], float(sys.argv[2]))
    result["work_ended_at"] = time.monotonic()   # the parent times the exit from here
    print(json.dumps(result), flush=True)
    if sys.argv[3:] == ["shutdown_worker"]:       # gunicorn's worker_exit: how long does it block?
        began = time.perf_counter()
        workers.shutdown_worker()
        print(json.dumps({"shutdown_s": time.perf_counter() - began}), flush=True)
        os._exit(0)
    sys.exit(0)                                   # a plain exit: the interpreter's exit hooks run
