"""Per-worker telemetry: a fresh service.instance.id and pid per process, nothing inherited."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import PROCESS_PID, SERVICE_INSTANCE_ID, SERVICE_NAME, Resource

from otel_memory import catalog, global_manager
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.workers import (
    current_worker,
    gunicorn_post_fork,
    init_worker,
    otlp_readers,
    shutdown_worker,
    worker_resource,
)

CONFIG = MemoryManagementConfig(monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000),
                                enable_leak_detection=False)


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    shutdown_worker()
    global_manager.uninstrument()
    yield
    shutdown_worker()
    global_manager.uninstrument()


def test_worker_resource_is_fresh_and_keeps_the_base() -> None:
    base = Resource({SERVICE_NAME: "checkout"})
    first, second = worker_resource(base), worker_resource(base)
    assert first.attributes[SERVICE_NAME] == "checkout"
    assert first.attributes[PROCESS_PID] == os.getpid()
    assert first.attributes[SERVICE_INSTANCE_ID] != second.attributes[SERVICE_INSTANCE_ID]
    assert worker_resource(base, instance_id="w-1").attributes[SERVICE_INSTANCE_ID] == "w-1"


def test_init_worker_exports_this_workers_metrics_under_its_identity() -> None:
    reader = InMemoryMetricReader()
    telemetry = init_worker(config=CONFIG, readers=lambda: [reader])
    assert init_worker(config=CONFIG, readers=lambda: [InMemoryMetricReader()]) is telemetry
    assert current_worker() is telemetry
    assert global_manager.current_manager() is telemetry.manager
    data = reader.get_metrics_data()
    assert data is not None
    resource = data.resource_metrics[0].resource.attributes
    assert resource[SERVICE_INSTANCE_ID] == telemetry.instance_id
    assert resource[PROCESS_PID] == os.getpid() == telemetry.pid
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert catalog.MEMORY_ALLOCATED.name in names
    shutdown_worker()
    assert current_worker() is None and not telemetry.manager.initialized


def test_a_forked_child_gets_its_own_identity_and_manager() -> None:
    parent = init_worker(config=CONFIG, readers=lambda: [InMemoryMetricReader()])
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a gunicorn post_fork hook does
        try:
            inherited = current_worker()
            child = init_worker(config=CONFIG, readers=lambda: [InMemoryMetricReader()])
            report = {"inherited": inherited is not None, "instance_id": child.instance_id,
                      "pid": child.pid, "fresh_manager": child.manager is not parent.manager,
                      "parent_manager_stopped": not parent.manager.initialized,
                      "pressure": int(child.manager.get_memory_pressure())}
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert report["inherited"] is False  # the parent's setup is not taken for the child's
    assert report["instance_id"] != parent.instance_id
    assert report["pid"] == pid != parent.pid
    assert report["fresh_manager"] and report["parent_manager_stopped"]
    assert parent.manager.initialized  # the parent is untouched


def test_otlp_readers_need_an_endpoint_and_a_known_protocol(monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", raising=False)
    assert otlp_readers() == []
    assert "no OTEL_EXPORTER_OTLP_ENDPOINT" in caplog.text
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with pytest.raises(ValueError, match=r"'carrier-pigeon' is not supported; expected 'grpc' or"):
        otlp_readers()


def test_the_gunicorn_hook_never_raises(monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MEMORY_MAX_HEAP_MB", "lots")
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        gunicorn_post_fork(None, None)
    assert current_worker() is None
    assert "worker telemetry not set up" in caplog.text and "MEMORY_MAX_HEAP_MB='lots'" in caplog.text
    caplog.clear()
    monkeypatch.delenv("MEMORY_MAX_HEAP_MB")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        gunicorn_post_fork(None, None)
    assert current_worker() is None     # our own error keeps its message: what and what was expected
    assert "ConfigError: OTEL_EXPORTER_OTLP_PROTOCOL='carrier-pigeon' is not supported" in caplog.text
