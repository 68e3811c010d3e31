"""ASGI: the health app and the admission middleware, driven by a real HTTP client (httpx)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from otel_memory import catalog
from otel_memory.manager import MemoryManager
from otel_memory.web import HEALTH_PATH, LEAKS_PATH, ASGIAdmissionMiddleware, make_asgi_app
from otel_memory.web.asgi import ADMISSION_ASGI
from tests.conftest import collect

BASE = "http://testserver"


def starlette_app(manager: MemoryManager, calls: list[str]) -> Starlette:
    async def work(request: Request) -> PlainTextResponse:
        calls.append(request.url.path)
        return PlainTextResponse("done", status_code=201)

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("handler failed")

    return Starlette(routes=[Route("/work", work), Route("/boom", boom),
                             Mount("/", make_asgi_app(manager))])


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def durations(reader: InMemoryMetricReader) -> dict[tuple[str, int], int]:
    metric = collect(reader).get(catalog.MEMORY_REQUEST_DURATION.name)
    if metric is None:
        return {}
    return {(p.attributes[catalog.ATTR_PRESSURE_STATE], p.attributes[catalog.ATTR_HTTP_STATUS_CODE]):
            p.count for p in metric.data.data_points}


async def test_health_app_serves_json_and_clear_4xx(roomy_manager: MemoryManager,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        async with client(make_asgi_app(roomy_manager)) as http:
            health = await http.get(HEALTH_PATH)
            assert health.status_code == 200 and health.json()["pressure"] == "Low"
            assert health.headers["cache-control"] == "no-store"
            assert (await http.get(LEAKS_PATH)).json()["status"] == "no report yet"
            head = await http.head(HEALTH_PATH)
            assert head.status_code == 200 and head.content == b""
            assert (await http.get("/")).status_code == 404
            refused = await http.put(HEALTH_PATH, json={"status": "healthy"})
            assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_health_app_answers_the_lifespan_protocol(roomy_manager: MemoryManager) -> None:
    app = make_asgi_app(roomy_manager)
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


async def test_middleware_passes_requests_and_times_them(roomy_manager: MemoryManager,
                                                         reader: InMemoryMetricReader) -> None:
    calls: list[str] = []
    app = ASGIAdmissionMiddleware(starlette_app(roomy_manager, calls), roomy_manager)
    async with client(app) as http:
        assert (await http.get("/work")).status_code == 201
        assert (await http.get(HEALTH_PATH)).status_code == 200
        with pytest.raises(RuntimeError, match="handler failed"):
            await http.get("/boom")
    assert calls == ["/work"]
    assert durations(reader) == {("low", 201): 1, ("low", 200): 1, ("low", 500): 1}


async def test_middleware_refuses_at_critical_with_retry_after(
        critical_manager: MemoryManager, reader: InMemoryMetricReader,
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    app = ASGIAdmissionMiddleware(starlette_app(critical_manager, calls), critical_manager, retry_after_s=3)
    with caplog.at_level(logging.INFO, logger="otel_memory"):
        async with client(app) as http:
            refused = [await http.post("/work", content=b"x" * 1000) for _ in range(4)]
            health = await http.get(HEALTH_PATH)
    assert calls == []
    assert {answer.status_code for answer in refused} == {503}
    assert {answer.headers["retry-after"] for answer in refused} == {"3"}
    assert health.status_code == 503 and health.json()["status"] == "unhealthy"
    assert critical_manager.rejections == {ADMISSION_ASGI: 4}
    assert durations(reader) == {("critical", 503): 5}
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["Memory pressure critical, rejecting requests"]


async def test_non_http_scopes_pass_through_untouched(critical_manager: MemoryManager) -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def nothing() -> dict[str, Any]:
        return {}

    async def drop(message: Any) -> None:
        return None

    middleware = ASGIAdmissionMiddleware(inner, critical_manager)
    await middleware({"type": "websocket", "path": "/ws"}, nothing, drop)
    assert seen == ["websocket"] and critical_manager.rejections == {}


def test_middleware_arguments_are_checked(roomy_manager: MemoryManager) -> None:
    with pytest.raises(TypeError, match="not an ASGI application"):
        ASGIAdmissionMiddleware(None, roomy_manager)  # type: ignore[arg-type]
