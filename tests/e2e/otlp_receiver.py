"""A real OTLP receiver for end-to-end tests: gRPC (grpcio) and HTTP/protobuf on loopback.

Built on opentelemetry-proto's service definitions. Both transports bind to 127.0.0.1 on a
free port and store everything they receive: metrics by name, spans and resource attributes.
Logs are accepted and discarded (the SDK's distro may export them too).

Example::

    from .otlp_receiver import OtlpReceiver     # from a test module in tests/e2e

    with OtlpReceiver() as rx:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.grpc_endpoint}
        ...  # start the exporting process with env
        assert rx.wait_for(lambda r: "process.memory.usage" in r.metric_names())
        metric = rx.metrics("process.memory.usage")[0]
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = ["OtlpReceiver", "any_value", "point_attributes"]


def any_value(value: common_pb2.AnyValue) -> Any:
    """The Python value of an OTLP AnyValue (arrays become lists, kvlists dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in key_values}


class _Store:
    """Everything received, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.metrics: dict[str, list[metrics_pb2.Metric]] = {}
        self.spans: list[trace_pb2.Span] = []
        self.resources: list[dict[str, Any]] = []
        self.requests = 0

    def add_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        with self.lock:
            self.requests += 1
            for resource_metrics in request.resource_metrics:
                self.resources.append(_attributes(resource_metrics.resource.attributes))
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        self.metrics.setdefault(metric.name, []).append(metric)

    def add_spans(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self.lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                self.resources.append(_attributes(resource_spans.resource.attributes))
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, store: _Store) -> None:
        self._store = store

    def Export(
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: Any
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._store.add_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: _Store) -> None:
        self._store = store

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._store.add_spans(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    def Export(
        self, request: logs_service_pb2.ExportLogsServiceRequest, context: Any
    ) -> logs_service_pb2.ExportLogsServiceResponse:
        return logs_service_pb2.ExportLogsServiceResponse()


def _http_handler(store: _Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            response: Any
            if self.path == "/v1/metrics":
                metrics_request = metrics_service_pb2.ExportMetricsServiceRequest()
                metrics_request.ParseFromString(body)
                store.add_metrics(metrics_request)
                response = metrics_service_pb2.ExportMetricsServiceResponse()
            elif self.path == "/v1/traces":
                trace_request = trace_service_pb2.ExportTraceServiceRequest()
                trace_request.ParseFromString(body)
                store.add_spans(trace_request)
                response = trace_service_pb2.ExportTraceServiceResponse()
            elif self.path == "/v1/logs":
                response = logs_service_pb2.ExportLogsServiceResponse()
            else:
                self.send_error(404, f"unknown OTLP path {self.path}")
                return
            payload = response.SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


class OtlpReceiver:
    """OTLP/gRPC and OTLP/HTTP (protobuf) receiver on 127.0.0.1, started by ``with``.

    Example::

        with OtlpReceiver() as rx:
            print(rx.grpc_endpoint, rx.http_endpoint)
            rx.wait_for(lambda r: bool(r.spans()), timeout=10)
    """

    def __init__(self) -> None:
        self._store = _Store()
        self._grpc_server: grpc.Server | None = None
        self._http_server: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.grpc_endpoint = ""
        self.http_endpoint = ""

    def start(self) -> OtlpReceiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(self._store), server)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self._store), server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsService(), server)
        grpc_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc_server = server
        self.grpc_endpoint = f"http://127.0.0.1:{grpc_port}"

        http_server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self._store))
        http_server.daemon_threads = True
        self._http_server = http_server
        self._http_thread = threading.Thread(
            target=http_server.serve_forever, name="otlp-http-receiver", daemon=True
        )
        self._http_thread.start()
        self.http_endpoint = f"http://127.0.0.1:{http_server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None).wait(5)
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
        if self._http_thread is not None:
            self._http_thread.join(5)
            self._http_thread = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what was received ---------------------------------------------------------------

    def metric_names(self) -> set[str]:
        with self._store.lock:
            return set(self._store.metrics)

    def metrics(self, name: str) -> list[metrics_pb2.Metric]:
        with self._store.lock:
            return list(self._store.metrics.get(name, ()))

    def spans(self) -> list[trace_pb2.Span]:
        with self._store.lock:
            return list(self._store.spans)

    def resources(self) -> list[dict[str, Any]]:
        with self._store.lock:
            return [dict(resource) for resource in self._store.resources]

    def request_count(self) -> int:
        with self._store.lock:
            return self._store.requests

    def wait_for(self, predicate: Callable[[OtlpReceiver], bool], timeout: float = 30.0) -> bool:
        """Poll ``predicate(self)`` every 50 ms until it is true (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def point_attributes(metric: metrics_pb2.Metric) -> list[dict[str, Any]]:
    """The attributes of every data point of an OTLP metric, whatever its kind."""
    kind = metric.WhichOneof("data")
    if kind is None:
        return []
    data = getattr(metric, kind)
    return [_attributes(point.attributes) for point in data.data_points]
