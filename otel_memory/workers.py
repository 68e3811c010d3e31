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

import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import PROCESS_PID, SERVICE_INSTANCE_ID, Resource

from . import instrumentor
from .config import MemoryManagementConfig
from .errors import ConfigError, OtelMemoryError, error_summary
from .manager import MemoryManager

_log = logging.getLogger("otel_memory")
_lock = threading.Lock()
_worker: WorkerTelemetry | None = None

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
    # A forked child holds a copy of the parent's manager: stop it here, start one of our own.
    instrumentor.uninstrument()
    resource = worker_resource(resource)
    provider = MeterProvider(resource=resource,
                             metric_readers=list((readers or otlp_readers)()))
    try:
        manager = instrumentor.instrument(config=config, meter_provider=provider)
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


def shutdown_worker() -> None:
    """Flush and stop this worker's exporters and its manager (e.g. in gunicorn's worker_exit)."""
    global _worker
    with _lock:
        worker, _worker = current_worker(), None
    if worker is None:
        return
    instrumentor.uninstrument()
    worker.meter_provider.shutdown()


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
