"""Per-worker telemetry for servers that fork or spawn workers (gunicorn, uvicorn --workers).

Every worker process needs its own MeterProvider, with a fresh ``service.instance.id`` and its
own ``process.pid`` in the resource, and its own MemoryManager (memory, pools, pressure and
admission decisions of that worker alone); nothing may be inherited from the parent.
``init_worker()`` does that once per process (calling it again in the same process returns the
same ``WorkerTelemetry``; calling it in a forked child replaces what the parent had).
Exporters come from ``readers`` (a function returning fresh MetricReaders) or, by default,
an OTLP reader configured by the standard OTEL_EXPORTER_OTLP_* variables. See docs/workers.md.

Example::

    # gunicorn.conf.py
    from otel_memory.workers import gunicorn_post_fork as post_fork
    from otel_memory.workers import gunicorn_worker_exit as worker_exit

    # the app module (imported in each worker after post_fork)
    telemetry = init_worker()
    application = WSGIAdmissionMiddleware(app, telemetry.manager)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._extras import missing_extra

try:   # the SDK is an extra: without it, say which one instead of a bare ModuleNotFoundError
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import PROCESS_PID, SERVICE_INSTANCE_ID, Resource
except ModuleNotFoundError as _missing:
    raise missing_extra(_missing, "otlp", "otel_memory.workers") from None

from . import forking, global_manager
from .config import MemoryManagementConfig
from .errors import ConfigError, OtelMemoryError, error_summary
from .forking import ProcessLock
from .manager import MemoryManager

_log = logging.getLogger("otel_memory")
_lock = ProcessLock()
_worker: WorkerTelemetry | None = None
_limiter: ExportLogLimiter | None = None

#: The loggers of the OTLP exporters and of the SDK's export loops: while a collector is down
#: they warn at every export attempt and retry, several times a minute each.
EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.trace.export",
)
_SIGNALS = frozenset({"metrics", "spans", "traces", "logs"})


class ExportLogLimiter(logging.Filter):
    """A logging filter letting through at most one warning or error per exporter per interval.

    A collector that is down makes every OTLP exporter warn at each retry and fail at each
    export; the limiter keeps the first record of each exporter and signal per ``interval_s``,
    holds the others back and says how many in the next one it lets through. Records below
    WARNING pass untouched. ``limit_export_logs()`` installs one on ``EXPORT_LOGGERS``.

    Example::

        limiter = limit_export_logs(interval_s=60.0)
        limiter.held_back          # records held back so far
    """

    def __init__(self, interval_s: float = 60.0) -> None:
        super().__init__()
        self.interval_s = _interval(interval_s)
        self.held_back = 0
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        forking.after_fork_in_child(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        key = (record.name, next((a for a in args if isinstance(a, str) and a in _SIGNALS), ""))
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            hold = last is not None and now - last < self.interval_s
            if hold:
                self._held[key] = held = self._held.get(key, 0) + 1
                self.held_back += 1
            else:
                self._last[key] = now
                held = self._held.pop(key, 0)
        if hold:
            self._show_later_filters(record)
            return False
        if held:
            record.msg = (f"{record.getMessage()} ({held} more like this held back by otel_memory "
                          f"in the last {self.interval_s:g} s)")
            record.args = None
        return True

    def _show_later_filters(self, record: logging.LogRecord) -> None:
        """Filters added to the logger after this one still see a record held back: they may be
        watching for export failures (``otel_memory.exiting`` does at exit). Their verdict is
        not asked for; a watcher that raises is ignored."""
        filters = logging.getLogger(record.name).filters
        if self not in filters:
            return
        for other in filters[filters.index(self) + 1:]:
            observe: Any = getattr(other, "filter", other)   # a Filter, or a plain callable
            with contextlib.suppress(Exception):   # an observer's failure is not the exporter's
                observe(record)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._last = {}
        self._held = {}


def _interval(seconds: Any, name: str = "interval_s") -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        raise ConfigError(f"{name}={seconds!r} is not valid: expected a finite number of seconds > 0")
    return float(seconds)


def limit_export_logs(interval_s: float = 60.0) -> ExportLogLimiter:
    """Install (once per process) the ExportLogLimiter on the exporters' loggers; return it.

    ``init_worker()`` calls it; call it yourself when you set up exporters another way.
    """
    global _limiter
    interval = _interval(interval_s)
    with _lock:
        if _limiter is None:
            _limiter = ExportLogLimiter(interval)
            for name in EXPORT_LOGGERS:
                logging.getLogger(name).addFilter(_limiter)
        _limiter.interval_s = interval
        return _limiter

ReaderFactory = Callable[[], Sequence[MetricReader]]


@dataclass(frozen=True)
class WorkerTelemetry:
    """What ``init_worker()`` set up in this worker process.

    Example::

        telemetry = init_worker()
        telemetry.instance_id, telemetry.pid, telemetry.manager.get_memory_pressure()
    """

    manager: MemoryManager
    meter_provider: MeterProvider
    resource: Resource
    instance_id: str
    pid: int


def worker_resource(base: Resource | None = None, *, instance_id: str | None = None) -> Resource:
    """``base`` (default: ``Resource.create()``, which reads OTEL_SERVICE_NAME and
    OTEL_RESOURCE_ATTRIBUTES) with a fresh ``service.instance.id`` and this ``process.pid``."""
    own = Resource({SERVICE_INSTANCE_ID: instance_id or str(uuid.uuid4()), PROCESS_PID: os.getpid()})
    return (base if base is not None else Resource.create()).merge(own)


def otlp_readers() -> list[MetricReader]:
    """One periodic OTLP reader set up from OTEL_EXPORTER_OTLP_* (gRPC unless the protocol
    is http/protobuf); none, with one warning, when no endpoint is configured."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        _log.warning("otel_memory: no OTEL_EXPORTER_OTLP_ENDPOINT; this worker's metrics are not "
                     "exported (pass readers= to init_worker to choose an exporter)")
        return []
    protocol = (os.environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip()
    exporter: Any
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter()
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        exporter = HttpMetricExporter()
    else:
        raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; expected "
                         "'grpc' or 'http/protobuf'")
    return [PeriodicExportingMetricReader(exporter)]


def init_worker(*, config: MemoryManagementConfig | None = None, readers: ReaderFactory | None = None,
                resource: Resource | None = None) -> WorkerTelemetry:
    """Set up this worker's MeterProvider and MemoryManager (once per process) and return them.

    ``config`` defaults to ``MemoryManagementConfig.from_env()``; ``readers`` to
    ``otlp_readers``; ``resource`` is the base the worker's identity is merged into.
    """
    global _worker
    with _lock:
        inherited = _worker
        if inherited is not None and inherited.pid == os.getpid():
            return inherited
        _worker = None
    limit_export_logs()
    # A forked child holds a copy of the parent's manager: stop it here, start one of our own.
    global_manager.uninstrument()
    resource = worker_resource(resource)
    provider = MeterProvider(resource=resource,
                             metric_readers=list((readers or otlp_readers)()))
    try:
        manager = global_manager.instrument(config=config, meter_provider=provider)
    except BaseException:
        provider.shutdown()
        raise
    telemetry = WorkerTelemetry(manager=manager, meter_provider=provider, resource=resource,
                                instance_id=str(resource.attributes[SERVICE_INSTANCE_ID]),
                                pid=os.getpid())
    with _lock:
        _worker = telemetry
    _log.info("otel_memory: worker %d reports as service.instance.id %s", telemetry.pid,
              telemetry.instance_id)
    return telemetry


def current_worker() -> WorkerTelemetry | None:
    """What ``init_worker()`` set up in this process, or None (also in a child not yet set up)."""
    worker = _worker
    return worker if worker is not None and worker.pid == os.getpid() else None


#: How long ``shutdown_worker()`` waits for the last export: enough for a collector that answers,
#: short enough that a collector that is down does not hold the worker's exit (the SDK's own
#: default waits up to 30 s, retrying).
SHUTDOWN_TIMEOUT_S = 3.0


def shutdown_worker(timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
    """Flush and stop this worker's exporters and its manager (e.g. in gunicorn's worker_exit),
    waiting at most ``timeout_s`` for the last export."""
    global _worker
    timeout = _interval(timeout_s, "timeout_s")
    with _lock:
        worker, _worker = current_worker(), None
    if worker is None:
        return
    global_manager.uninstrument()
    worker.meter_provider.shutdown(timeout_millis=timeout * 1000)


def gunicorn_post_fork(server: Any, worker: Any) -> None:
    """gunicorn ``post_fork`` hook: ``init_worker()`` from the environment; never raises."""
    try:
        init_worker()
    except Exception as error:  # noqa: BLE001 - telemetry must never stop a worker from serving
        _log.warning("otel_memory: worker telemetry not set up: %s", _describe(error))


def gunicorn_worker_exit(server: Any, worker: Any) -> None:
    """gunicorn ``worker_exit`` hook: ``shutdown_worker()``; never raises."""
    try:
        shutdown_worker()
    except Exception as error:  # noqa: BLE001
        _log.warning("otel_memory: worker telemetry not shut down: %s", _describe(error))


def _describe(error: Exception) -> str:
    """Our own errors say what was wrong and what was expected; an exporter's may hold an
    endpoint with credentials or a header value, so of those only the type and location."""
    if isinstance(error, OtelMemoryError):
        return f"{type(error).__name__}: {error}"
    return error_summary(error)
