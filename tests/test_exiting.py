"""The exit export: sent when the exporter answers, abandoned (not retried) when it fails."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpOTLPMetricExporter,
)
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from otel_memory import catalog, exiting
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.manager import MemoryManager
from tests.e2e.otlp_receiver import OtlpReceiver


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _grpc(endpoint: str) -> OTLPMetricExporter:
    return OTLPMetricExporter(endpoint=endpoint, insecure=True)


def _http(endpoint: str) -> HttpOTLPMetricExporter:
    return HttpOTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics")


@pytest.fixture
def provider_with() -> Iterator[Callable[[Any], MeterProvider]]:
    """A MeterProvider exporting through an exporter, with a manager reporting into it."""
    made: list[tuple[MeterProvider, MemoryManager]] = []

    def make(exporter: Any) -> MeterProvider:
        provider = MeterProvider(metric_readers=[
            PeriodicExportingMetricReader(exporter, export_interval_millis=600_000)],
            shutdown_on_exit=False)
        manager = MemoryManager(MemoryManagementConfig(
            monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000), enable_leak_detection=False),
            meter_provider=provider)
        manager.initialize()
        made.append((provider, manager))
        return provider

    yield make
    for provider, manager in made:
        manager.shutdown()
        if not provider._shutdown:
            provider.shutdown(timeout_millis=1000)


@pytest.mark.parametrize("exporter", [_grpc, _http], ids=["grpc", "http"])
def test_an_answering_collector_gets_our_last_values(
        provider_with: Callable[[Any], MeterProvider], exporter: Callable[[str], Any],
        caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if exporter is _grpc else receiver.http_endpoint
        provider = provider_with(exporter(endpoint))
        with caplog.at_level(logging.WARNING):
            assert exiting.finish(provider) == "exported"
        assert catalog.MEMORY_ALLOCATED.name in receiver.metric_names()
    assert not provider._shutdown, "a working pipeline is left to the SDK's own exit hook"
    assert not [r for r in caplog.records if r.name == "otel_memory"]


@pytest.mark.parametrize("exporter", [_grpc, _http], ids=["grpc", "http"])
def test_a_closed_port_is_not_retried(
        provider_with: Callable[[Any], MeterProvider], exporter: Callable[[str], Any],
        caplog: pytest.LogCaptureFixture) -> None:
    provider = provider_with(exporter(f"http://127.0.0.1:{_closed_port()}"))
    with caplog.at_level(logging.WARNING):
        assert exiting.finish(provider) == "abandoned"
    assert provider._shutdown, "shut down, so the SDK's exit hook has nothing left to retry"
    ours = [r.getMessage() for r in caplog.records if r.name == "otel_memory"]
    assert ours == ["otel_memory: the last export at exit failed; shutting the meter provider down "
                    "without waiting for the exporter's retries"]
    # The exporter's own warning still reached the log: our watch passes records on unchanged.
    assert any(r.name.startswith("opentelemetry.exporter") for r in caplog.records)


def test_an_export_that_never_ends_is_abandoned_after_the_wait(
        provider_with: Callable[[Any], MeterProvider]) -> None:
    class Stuck(OTLPMetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
            self._shutdown_in_progress.wait(30)   # like a collector that never answers
            return super().export(metrics_data, timeout_millis, **kwargs)

    provider = provider_with(Stuck(endpoint=f"127.0.0.1:{_closed_port()}", insecure=True))
    assert exiting.finish(provider, wait_s=0.3) == "abandoned"
    assert provider._shutdown


def test_providers_that_cannot_flush_or_are_shut_down_are_left_alone() -> None:
    assert exiting.finish(NoOpMeterProvider()) == "skipped"
    provider = MeterProvider(shutdown_on_exit=False)
    provider.shutdown()
    assert exiting.finish(provider) == "skipped"


def test_each_provider_is_watched_once(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[tuple[Any, ...]] = []
    monkeypatch.setattr(exiting.atexit, "register", lambda *args: registered.append(args))
    monkeypatch.setattr(exiting, "_watched", exiting.weakref.WeakSet())
    monkeypatch.setattr(exiting, "_watching_global", False)
    provider = MeterProvider(shutdown_on_exit=False)
    exiting.finish_at_exit(provider)
    exiting.finish_at_exit(provider)
    exiting.finish_at_exit(None)
    exiting.finish_at_exit(None)
    assert len(registered) == 2
    assert registered[0][0] is exiting._at_exit and registered[0][1]() is provider
    assert registered[1] == (exiting._at_exit, None)
    provider.shutdown()


def test_a_manager_registers_its_provider(monkeypatch: pytest.MonkeyPatch,
                                          meter_provider: MeterProvider) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(exiting, "finish_at_exit", seen.append)
    manager = MemoryManager(MemoryManagementConfig(enable_leak_detection=False),
                            meter_provider=meter_provider)
    manager.initialize()
    manager.shutdown()
    assert seen == [meter_provider]
