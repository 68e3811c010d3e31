"""HttpClientPool and LlmClientPool against a real HTTP server on loopback that speaks the
OpenAI chat completions shape. The API key must never leak: not in a repr, a log line, a
metric, a span or an exception, even when the server echoes it back in an error."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_memory import catalog
from otel_memory.integration import HttpClientPool, LlmClientPool, LlmError
from tests.conftest import collect, points

pytestmark = pytest.mark.e2e

API_KEY = "sk-test-5ecr3t-abcdef0123456789"


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.peers: set[tuple[str, int]] = set()
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: pooled clients reuse their connections
    server: ChatServer

    def log_message(self, *_args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any] | str) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _count(self) -> None:
        with self.server.lock:
            self.server.peers.add(self.client_address)
            self.server.requests += 1

    def do_GET(self) -> None:
        self._count()
        self._send(200, {"ok": True, "path": self.path})

    def do_POST(self) -> None:
        self._count()
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        auth = self.headers.get("Authorization", "")
        if auth != f"Bearer {API_KEY}":
            self._send(401, {"error": {"message": "invalid api key"}})
            return
        prompt = body["messages"][-1]["content"]
        if prompt == "fail":  # a careless server that echoes the credentials
            self._send(500, {"error": {"message": f"upstream failed for {auth}"}})
            return
        if prompt == "garbage":
            self._send(200, "not json")
            return
        self._send(200, {"id": "c1", "model": body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": f"echo: {prompt}"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}})


@pytest.fixture
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    thread = threading.Thread(target=chat.serve_forever, daemon=True)
    thread.start()
    yield chat
    chat.shutdown()
    chat.server_close()


def pool_value(reader: InMemoryMetricReader, spec: catalog.MetricSpec, pool: str) -> Any:
    found = [v for v, a in points(collect(reader), spec.name) if a.get(catalog.ATTR_POOL_NAME) == pool]
    assert len(found) == 1, (spec.name, pool)
    return found[0]


def test_http_pool_reuses_clients_and_their_connections(server: ChatServer, meter_provider: MeterProvider,
                                                        reader: InMemoryMetricReader) -> None:
    http = HttpClientPool(2, base_url=server.base_url, name="api", meter_provider=meter_provider)
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                with http.get_client() as client:
                    response = client.get(f"/items/{n}-{i}")
                    assert response.json()["path"] == f"/items/{n}-{i}"
        except BaseException as error:  # noqa: BLE001 - reported to the test
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert server.requests == 60
    assert len(server.peers) <= 2  # two clients, each on one keep-alive connection
    assert pool_value(reader, catalog.MEMORY_POOL_CREATED, "api") <= 2
    assert pool_value(reader, catalog.MEMORY_POOL_BORROWS, "api") == 60
    assert pool_value(reader, catalog.MEMORY_POOL_MAX, "api") == 2
    with http.get_client() as client:
        client.close()  # broken by its user: found on the next borrow and replaced
    with http.get_client() as client:
        assert not client.is_closed and client.get("/x").status_code == 200
    assert http.stats().destroyed_by("health_check") == 1
    http.close()


async def test_async_http_pool(server: ChatServer, meter_provider: MeterProvider,
                               reader: InMemoryMetricReader) -> None:
    http = HttpClientPool(3, base_url=server.base_url, name="api", meter_provider=meter_provider)

    async def fetch(n: int) -> int:
        async with http.get_client() as client:
            return int((await client.get(f"/n/{n}")).json()["path"].rsplit("/", 1)[1])

    assert sorted(await asyncio.gather(*(fetch(n) for n in range(20)))) == list(range(20))
    assert pool_value(reader, catalog.MEMORY_POOL_CREATED, "api.async") <= 3
    assert pool_value(reader, catalog.MEMORY_POOL_BORROWS, "api.async") == 20
    await http.aclose()


def everything_exported(reader: InMemoryMetricReader, spans: InMemorySpanExporter) -> str:
    data = reader.get_metrics_data()
    metrics_text = data.to_json() if data is not None else ""
    spans_text = "".join(span.to_json() for span in spans.get_finished_spans())
    return metrics_text + spans_text


def test_llm_pool_generates_and_never_leaks_the_key(
        server: ChatServer, meter_provider: MeterProvider, reader: InMemoryMetricReader,
        caplog: pytest.LogCaptureFixture) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    llm = LlmClientPool(2, API_KEY, "tiny-model", base_url=server.base_url + "/v1",
                        meter_provider=meter_provider, tracer_provider=tracer_provider)
    caplog.set_level(logging.DEBUG)
    with llm.get_client() as client:
        assert client.generate("hello") == "echo: hello"
        with pytest.raises(LlmError) as failed:
            client.generate("fail")
        with pytest.raises(LlmError, match="unexpected body"):
            client.generate("garbage")
        client_repr = repr(client)
    error_text = str(failed.value)
    assert "HTTP 500" in error_text and "***" in error_text
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert len(spans.get_finished_spans()) == 3
    ok = spans.get_finished_spans()[0]
    assert ok.attributes is not None and ok.attributes["gen_ai.request.model"] == "tiny-model"
    assert ok.attributes["gen_ai.usage.output_tokens"] == 2
    assert "chat tiny-model" in finished
    assert pool_value(reader, catalog.MEMORY_POOL_BORROWS, "llm") == 1
    # the key appears nowhere that leaves the process
    texts = [repr(llm), client_repr, error_text, repr(failed.value), everything_exported(reader, spans),
             "\n".join(record.getMessage() for record in caplog.records)]
    for text in texts:
        assert API_KEY not in text
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(llm)
    llm.close()


async def test_async_llm_pool_and_unreachable_server(server: ChatServer, meter_provider: MeterProvider,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    llm = LlmClientPool(2, API_KEY, "tiny-model", base_url=server.base_url + "/v1",
                        meter_provider=meter_provider, tracer_provider=tracer_provider)
    async with llm.get_client() as client:
        answers = await asyncio.gather(client.generate("a"), client.generate("b"))
    assert answers == ["echo: a", "echo: b"]
    caplog.set_level(logging.DEBUG)
    server.shutdown()
    server.server_close()
    dead = LlmClientPool(1, API_KEY, "tiny-model", base_url=server.base_url + "/v1",
                         meter_provider=meter_provider, tracer_provider=tracer_provider)
    async with dead.get_client() as client:
        with pytest.raises(LlmError, match="ConnectError") as failed:
            await client.generate("anyone?")
    assert API_KEY not in str(failed.value)
    assert all(API_KEY not in record.getMessage() for record in caplog.records)
    assert all(API_KEY not in span.to_json() for span in spans.get_finished_spans())
    await llm.aclose()
    await dead.aclose()
