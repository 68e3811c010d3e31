"""Secrets: a DSN password and an API key, made to fail in every way, never leave the process.

A DatabaseConnectionPool (a DSN with a password) and an LlmClientPool (an API key) are pointed
at a closed port (refused), a server that rejects the credentials (a real PostgreSQL with
password authentication; an HTTP server answering 401 and echoing the key, as some APIs do) and
a server that accepts the connection and never answers (timeout), from sync and asyncio code.
Everything that could carry the secrets is then scanned: every log record of every logger at
DEBUG, every exception (message, repr, arguments, causes), the reprs of the pools and handles,
every metric attribute and resource attribute, every span attribute, event and status. Then
objects holding a marker string are leaked on purpose until the leak detector names their type,
and its reports, spans and logs are scanned for the marker.

Example::

    row = secrets(SHORT, initdb="/usr/lib/postgresql/16/bin/initdb")
    row.figures["scanned"]          # how many texts were searched
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .exporters import closed_port
from .profile import Profile, Row

PASSWORD = "pg-S3cret-7f1c9e"
API_KEY = "sk-reliability-4b8d1a0e6c2f"
MARKER = "marker-of-leaked-value-93c1"


class Everything(logging.Handler):
    """Every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@contextlib.contextmanager
def all_logs() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    previous = root.level
    quiet = {name: logging.getLogger(name).level for name in ("otel_memory",)}
    root.setLevel(logging.DEBUG)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def exception_texts(error: BaseException) -> list[str]:
    """Message, repr and arguments of an exception and of every cause and context below it."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.extend([str(current), repr(current), *(repr(arg) for arg in current.args)])
        texts.extend(repr(value) for value in getattr(current, "__dict__", {}).values())
        current = current.__cause__ or current.__context__
    return texts


def telemetry_texts(reader: InMemoryMetricReader, spans: InMemorySpanExporter) -> list[str]:
    """Every metric attribute and resource attribute, and every span's name, attributes, events
    and status."""
    texts: list[str] = []
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        texts.append(json.dumps(dict(resource_metrics.resource.attributes), default=str))
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    texts.append(f"{metric.name} {json.dumps(dict(point.attributes or {}), default=str)}")
    for span in spans.get_finished_spans():
        texts.append(span.to_json())
    return texts


class Hang:
    """A loopback server that accepts connections and never answers (the timeout case)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.sock.accept()
                self.held.append(connection)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the accept() of the thread
        self.sock.close()
        self._thread.join(5)
        for connection in self.held:
            connection.close()


class EchoingUnauthorized(http.server.BaseHTTPRequestHandler):
    """Answers 401 with an error message that quotes the Authorization header, key and all."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"error": {"message": f"Incorrect API key provided: "
                                                f"{self.headers.get('authorization', '')}"}}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def unauthorized_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoingUnauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def password_server(initdb: str) -> Any:
    """A PostgreSQL that asks role ``app`` for its (other) password; the caller stops it."""
    import psycopg

    from tests.e2e.postgres_server import PostgresServer

    server = PostgresServer.start(initdb)
    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute("CREATE ROLE app LOGIN PASSWORD 'the-right-one'")
        hba = Path(connection.execute("SHOW hba_file").fetchone()[0])  # type: ignore[index]
        hba.write_text("local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
                       "host all all 127.0.0.1/32 scram-sha-256\n")
        connection.execute("SELECT pg_reload_conf()")
    return server


def _database_failures(targets: dict[str, int], provider: MeterProvider, texts: list[str],
                       outcomes: dict[str, str]) -> None:
    from otel_memory.integration import DatabaseConnectionPool

    for case, port in targets.items():
        for form, dsn in (("uri", f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/app?connect_timeout=1"),
                          ("keywords", f"host=127.0.0.1 port={port} user=app password={PASSWORD} "
                                       "dbname=app connect_timeout=1")):
            db = DatabaseConnectionPool(2, dsn, name=f"secrets.db.{case}.{form}", timeout=3.0, min_idle=1,
                                        meter_provider=provider)
            texts.append(repr(db))
            try:
                with db.get_connection() as conn:
                    conn.execute("SELECT 1")
                outcomes[f"db {case} {form} sync"] = "connected?!"
            except Exception as error:  # noqa: BLE001 - scanned
                outcomes[f"db {case} {form} sync"] = type(error).__name__
                texts.extend(exception_texts(error))

            async def use(db: DatabaseConnectionPool = db) -> None:
                async with db.get_connection() as aconn:
                    await aconn.execute("SELECT 1")

            try:
                asyncio.run(use())
                outcomes[f"db {case} {form} async"] = "connected?!"
            except Exception as error:  # noqa: BLE001 - scanned
                outcomes[f"db {case} {form} async"] = type(error).__name__
                texts.extend(exception_texts(error))
            texts.extend([repr(db.pool), repr(db.stats())])
            db.pool._housekeep()          # the min_idle refill fails too, in the background
            db.close()


def _llm_failures(targets: dict[str, str], provider: MeterProvider, tracer: TracerProvider,
                  texts: list[str], outcomes: dict[str, str]) -> None:
    from otel_memory.integration import LlmClientPool

    for case, base_url in targets.items():
        llm = LlmClientPool(2, API_KEY, "reliability-model", base_url, name=f"secrets.llm.{case}",
                            request_timeout=1.0, meter_provider=provider, tracer_provider=tracer)
        texts.append(repr(llm))
        try:
            with llm.get_client() as client:
                texts.append(repr(client))
                client.generate("hello")
            outcomes[f"llm {case} sync"] = "answered?!"
        except Exception as error:  # noqa: BLE001 - scanned
            outcomes[f"llm {case} sync"] = type(error).__name__
            texts.extend(exception_texts(error))

        async def use(llm: LlmClientPool = llm) -> None:
            async with llm.get_client() as aclient:
                texts.append(repr(aclient))
                await aclient.generate("hello")
            await llm.aclose()

        try:
            asyncio.run(use())
            outcomes[f"llm {case} async"] = "answered?!"
        except Exception as error:  # noqa: BLE001 - scanned
            outcomes[f"llm {case} async"] = type(error).__name__
            texts.extend(exception_texts(error))
        llm.close()


class LeakedRecord:
    """What the application leaks on purpose: a record holding the marker string."""

    def __init__(self, number: int) -> None:
        self.payload = {"note": f"{MARKER}-{number}", "values": [MARKER] * 3}
        self.name = f"{MARKER}:{number}"


def _leak_report(profile: Profile, texts: list[str], figures: dict[str, Any]) -> None:
    from otel_memory.leak import LeakDetector, RankingPolicy

    spans = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    detector = LeakDetector(meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer,
                            threshold_bytes=1, attribute_allocations=True, attribution_window_s=0.05,
                            attribution_interval_s=0.0, deep_look_interval_s=0.0,
                            policy=RankingPolicy(warmup_checks=2, min_growth_checks=3,
                                                 min_growth_objects=200, min_growth_bytes=1024))
    leaked: list[LeakedRecord] = []
    found: list[str] = []
    for check in range(profile.leak_checks):
        leaked.extend(LeakedRecord(len(leaked) + i) for i in range(400))
        report = detector.check()
        texts.append(json.dumps(report.to_json_dict(), default=str))
        texts.append(repr(report))
        found = [s.type_name for s in report.suspects]
        if any(name.endswith("LeakedRecord") for name in found) and check >= 4:
            break
    texts.extend(telemetry_texts(reader, spans))
    figures["leak_suspects"] = found
    figures["leaked_objects"] = len(leaked)
    detector.stop()


def secrets(profile: Profile, initdb: str | None) -> Row:
    """See the module docstring; without ``initdb`` the bad-credentials database case is left out."""
    row = Row("Secrets: DSN password, API key, leaked values", "")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    spans = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    texts: list[str] = []
    outcomes: dict[str, str] = {}
    hang = Hang()
    server = password_server(initdb) if initdb else None
    try:
        with row.timed(), all_logs() as logs, unauthorized_server() as unauthorized_port:
            db_targets = {"refused": closed_port(), "timeout": hang.port}
            if server is not None:
                db_targets["bad credentials"] = server.port
            _database_failures(db_targets, provider, texts, outcomes)
            _llm_failures({"refused": f"http://127.0.0.1:{closed_port()}/v1",
                           "bad credentials": f"http://127.0.0.1:{unauthorized_port}/v1",
                           "timeout": f"http://127.0.0.1:{hang.port}/v1"}, provider, tracer, texts, outcomes)
            texts.extend(telemetry_texts(reader, spans))
            _leak_report(profile, texts, row.figures)
        texts.extend(logs.texts)
    finally:
        hang.close()
        if server is not None:
            server.stop()
        provider.shutdown()
    leaks = {secret: [text[:300] for text in texts if secret in text]
             for secret in (PASSWORD, API_KEY, MARKER)}
    row.check("every attempt failed (refused, bad credentials, timeout)",
              all("?!" not in outcome for outcome in outcomes.values())
              and len(outcomes) == 2 * 2 * len(db_targets) + 2 * 3)
    row.check("the password is nowhere", leaks[PASSWORD] == [])
    row.check("the API key is nowhere", leaks[API_KEY] == [])
    row.check("the leak detector named the leaked type", any(
        name.endswith("LeakedRecord") for name in row.figures["leak_suspects"]))
    row.check("the leaked marker is in no report, span or log", leaks[MARKER] == [])
    row.check("the scan saw the failures (log records and exceptions were collected)",
              len(logs.texts) > 10 and sum(1 for o in outcomes.values() if o) == len(outcomes))
    row.figures.update(outcomes=outcomes, scanned=len(texts), log_records=len(logs.texts),
                       leaks=leaks, bad_credentials_db=server is not None)
    cases = len(outcomes)
    row.count = f"{cases} failing uses, {row.figures['leaked_objects']:,} leaked objects"
    row.result = (f"{len(texts):,} texts scanned ({len(logs.texts):,} log records at DEBUG, exceptions, "
                  f"reprs, metric and span attributes): password found {len(leaks[PASSWORD])} times, API "
                  f"key {len(leaks[API_KEY])}, leaked marker {len(leaks[MARKER])}"
                  + ("" if server is not None
                     else " (no PostgreSQL: bad-credentials database case left out)"))
    return row
