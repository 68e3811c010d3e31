"""WSGI: the health app and the admission middleware, driven by a real HTTP client (httpx)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.manager import MemoryManager
from otel_memory.web import HEALTH_PATH, LEAKS_PATH, WSGIAdmissionMiddleware, make_wsgi_app
from otel_memory.web.wsgi import ADMISSION_WSGI
from tests.conftest import collect, manager_with_limit, rss_mb

BASE = "http://testserver"


class App:
    """A WSGI app that counts its calls and whether its body was closed."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls += 1
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("handler failed")
        code = "404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK"
        start_response(code, [("content-type", "text/plain")])
        return self.Body(self)

    class Body:
        def __init__(self, app: App) -> None:
            self.app = app

        def __iter__(self) -> Iterator[bytes]:
            yield b"hello "
            yield b"world"

        def close(self) -> None:
            self.app.closed += 1


def client(app: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE)


def durations(reader: InMemoryMetricReader) -> dict[tuple[str, int], int]:
    metric = collect(reader).get(catalog.MEMORY_REQUEST_DURATION.name)
    if metric is None:
        return {}
    return {(p.attributes[catalog.ATTR_PRESSURE_STATE], p.attributes[catalog.ATTR_HTTP_STATUS_CODE]):
            p.count for p in metric.data.data_points}


def test_health_app_serves_json_and_clear_4xx(roomy_manager: MemoryManager,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), client(make_wsgi_app(roomy_manager)) as http:
        health = http.get(HEALTH_PATH)
        assert health.status_code == 200
        assert health.headers["content-type"] == "application/json"
        assert health.json()["status"] == "healthy"
        assert http.get(LEAKS_PATH).json() == {"status": "no report yet", "report": None}
        head = http.head(HEALTH_PATH)
        assert head.status_code == 200 and head.content == b""
        assert http.get("/nope").status_code == 404
        refused = http.post(HEALTH_PATH, content=b"\x00\xff garbage")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
        assert http.delete(LEAKS_PATH).status_code == 405
        assert http.get(HEALTH_PATH + "?verbose=1").status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_health_app_is_503_when_unhealthy(critical_manager: MemoryManager) -> None:
    with client(make_wsgi_app(critical_manager)) as http:
        answer = http.get(HEALTH_PATH)
    assert answer.status_code == 503 and answer.json()["status"] == "unhealthy"


def test_middleware_passes_requests_and_times_them(roomy_manager: MemoryManager,
                                                   reader: InMemoryMetricReader) -> None:
    app = App()
    with client(WSGIAdmissionMiddleware(app, roomy_manager)) as http:
        assert http.get("/work").text == "hello world"
        assert http.get("/missing").status_code == 404
        with pytest.raises(RuntimeError, match="handler failed"):
            http.get("/boom")
    assert app.calls == 3 and app.closed == 2
    assert durations(reader) == {("low", 200): 1, ("low", 404): 1, ("low", 500): 1}


def test_middleware_refuses_at_critical_with_retry_after(
        critical_manager: MemoryManager, reader: InMemoryMetricReader) -> None:
    app = App()
    health = make_wsgi_app(critical_manager)

    def routed(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = health if environ["PATH_INFO"].startswith("/health/") else app
        return target(environ, start_response)

    with client(WSGIAdmissionMiddleware(routed, critical_manager, retry_after_s=7)) as http:
        refused = [http.get("/work") for _ in range(3)]
        health_answer = http.get(HEALTH_PATH)  # exempt: answered by the health app itself
    assert app.calls == 0
    for answer in refused:
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "7"
        assert answer.json() == {"error": "memory pressure is critical; retry later", "retry_after_s": 7}
    assert health_answer.status_code == 503 and health_answer.json()["status"] == "unhealthy"
    assert critical_manager.rejections == {ADMISSION_WSGI: 3}
    assert durations(reader) == {("critical", 503): 4}


def test_admission_off_runs_the_app_at_critical(meter_provider: MeterProvider) -> None:
    manager = manager_with_limit(rss_mb() / 2, meter_provider, admission=False)
    app = App()
    try:
        with client(WSGIAdmissionMiddleware(app, manager)) as http:
            assert http.get("/work").status_code == 200
    finally:
        manager.shutdown()
    assert app.calls == 1 and manager.rejections == {}


def test_middleware_arguments_are_checked(roomy_manager: MemoryManager) -> None:
    with pytest.raises(TypeError, match="not a WSGI application"):
        WSGIAdmissionMiddleware("app", roomy_manager)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"retry_after_s=0; expected a whole number of seconds >= 1"):
        WSGIAdmissionMiddleware(App(), roomy_manager, retry_after_s=0)
    # one string would otherwise exempt every path made of its characters, "/" included
    with pytest.raises(TypeError, match=r"exempt_paths='/metrics' is one string; expected a collection"):
        WSGIAdmissionMiddleware(App(), roomy_manager, exempt_paths="/metrics")
    with pytest.raises(ValueError, match=r"exempt_paths holds 'metrics'; expected paths starting with '/'"):
        WSGIAdmissionMiddleware(App(), roomy_manager, exempt_paths=("/health/memory", "metrics"))
