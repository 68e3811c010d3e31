"""health_status and the routes: the original design's JSON, the status per level, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory import probes
from otel_memory.config import MB, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.manager import MemoryManager
from otel_memory.web import HEALTH_PATH, LEAKS_PATH, health_http_status, health_status, leak_report
from otel_memory.web.health import HealthRoutes

KEYS = {"status", "memory_mb", "peak_mb", "pressure", "limit_mb", "limit_source", "utilization_percent"}


def rss_mb() -> float:
    return probes.read_statm("/proc/self/statm")[0] / MB


def start(monitor: MemoryLimitConfig, provider: MeterProvider) -> MemoryManager:
    manager = MemoryManager(MemoryManagementConfig(monitor_config=monitor, enable_leak_detection=False),
                            meter_provider=provider)
    manager.initialize()
    return manager


@pytest.fixture
def manager(meter_provider: MeterProvider) -> Iterator[MemoryManager]:
    manager = start(MemoryLimitConfig(max_heap_mb=rss_mb() * 4 + 200, monitoring_interval_ms=60_000),
                    meter_provider)
    yield manager
    manager.shutdown()


def test_health_json_at_low_pressure(manager: MemoryManager) -> None:
    status = health_status(manager)
    assert set(status) == KEYS
    assert status["status"] == "healthy" and status["pressure"] == "Low"
    assert status["limit_source"] == "config"
    assert status["limit_mb"] == int(manager.limit.bytes // MB)
    assert abs(status["memory_mb"] - rss_mb()) < 50
    assert status["peak_mb"] >= status["memory_mb"]
    assert 0 < status["utilization_percent"] < 100
    json.dumps(status)


@pytest.mark.parametrize(("gc_fraction", "critical_fraction", "status", "pressure", "code"), [
    (0.5, 2.0, "degraded", "High", 200),
    (0.3, 0.5, "unhealthy", "Critical", 503),
])
def test_status_and_http_code_follow_the_level(meter_provider: MeterProvider, gc_fraction: float,
                                               critical_fraction: float, status: str, pressure: str,
                                               code: int) -> None:
    base = rss_mb()
    manager = start(MemoryLimitConfig(
        max_heap_mb=base * 3, warning_threshold_mb=base * 0.2, gc_pressure_threshold_mb=base * gc_fraction,
        critical_threshold_mb=base * critical_fraction, monitoring_interval_ms=60_000), meter_provider)
    try:
        document = health_status(manager)
        assert (document["status"], document["pressure"]) == (status, pressure)
        answer = HealthRoutes(manager).answer("GET", HEALTH_PATH)
        assert answer.status == code == health_http_status(document)
        served = json.loads(answer.body)
        assert set(served) == KEYS
        assert (served["status"], served["pressure"]) == (status, pressure)
    finally:
        manager.shutdown()


def test_an_uninitialized_manager_is_unknown_and_503() -> None:
    manager = MemoryManager(MemoryManagementConfig(enable_leak_detection=False))
    assert health_status(manager)["status"] == "unknown"
    assert HealthRoutes(manager).answer("GET", HEALTH_PATH).status == 503
    assert health_http_status(health_status(manager)) == 503


def test_the_health_json_reveals_no_paths_or_environment(manager: MemoryManager,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "hunter2-do-not-leak")
    body = HealthRoutes(manager).answer("GET", HEALTH_PATH).body.decode()
    assert "/" not in body and "hunter2" not in body and "\\" not in body


def test_leak_report_without_a_detector_is_no_report_yet(manager: MemoryManager) -> None:
    assert leak_report(manager) == {"status": "no report yet", "report": None}
    answer = HealthRoutes(manager).answer("GET", LEAKS_PATH)
    assert answer.status == 200
    assert json.loads(answer.body) == {"status": "no report yet", "report": None}


def test_unknown_paths_and_other_methods_get_clear_4xx(manager: MemoryManager) -> None:
    routes = HealthRoutes(manager)
    missing = routes.answer("GET", "/health/memory/../../etc/passwd")
    assert missing.status == 404
    assert json.loads(missing.body) == {"error": "unknown path", "expected": [HEALTH_PATH, LEAKS_PATH]}
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "X" * 100):
        answer = routes.answer(method, HEALTH_PATH)
        assert answer.status == 405, method
        assert dict(answer.headers)["allow"] == "GET, HEAD"
        document = json.loads(answer.body)
        assert document["expected"] == ["GET", "HEAD"] and "not allowed" in document["error"]
        assert len(document["error"]) < 64


def test_route_paths_are_checked(manager: MemoryManager) -> None:
    with pytest.raises(ValueError, match=r"health_path='health'; expected a path starting with '/'"):
        HealthRoutes(manager, health_path="health")
    with pytest.raises(ValueError, match="both '/x'"):
        HealthRoutes(manager, health_path="/x", leaks_path="/x")
    custom = HealthRoutes(manager, health_path="/healthz/memory", leaks_path="/healthz/leaks")
    assert custom.answer("GET", "/healthz/memory").status == 200
    assert custom.answer("GET", HEALTH_PATH).status == 404


def test_leak_report_path_serves_the_detectors_latest_report(meter_provider: MeterProvider) -> None:
    manager = MemoryManager(MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=rss_mb() * 4 + 200, monitoring_interval_ms=60_000),
        enable_leak_detection=True, leak_detection_interval_s=3600), meter_provider=meter_provider)
    manager.initialize()
    try:
        routes = HealthRoutes(manager)
        assert json.loads(routes.answer("GET", LEAKS_PATH).body)["status"] == "no report yet"
        report = manager.leak_detector.check()
        answer = routes.answer("GET", LEAKS_PATH)
        assert answer.status == 200
        assert json.loads(answer.body) == {"status": "ok",
                                           "report": json.loads(json.dumps(report.to_json_dict()))}
    finally:
        manager.shutdown()


class UnreadableManager(MemoryManager):
    """A manager whose readings fail (e.g. a probe broke): the health route must still answer."""

    def get_memory_stats(self):  # type: ignore[no-untyped-def]
        raise OSError("cannot read /srv/secret-host/statm for token s3cr3t")


def test_a_failing_report_answers_500_with_one_warning_and_nothing_private(
        meter_provider: MeterProvider, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    manager = UnreadableManager(MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=rss_mb() * 4 + 200, monitoring_interval_ms=60_000),
        enable_leak_detection=False), meter_provider=meter_provider)
    manager.initialize()
    try:
        with caplog.at_level(logging.WARNING, logger="otel_memory"):
            answer = HealthRoutes(manager).answer("GET", HEALTH_PATH)
    finally:
        manager.shutdown()
    assert answer.status == 500
    assert json.loads(answer.body) == {"error": "the memory report could not be produced"}
    warnings = [r for r in caplog.records if "could not be answered" in r.getMessage()]
    assert len(warnings) == 1 and not any(r.levelname == "ERROR" for r in caplog.records)
    assert warnings[0].getMessage().startswith(
        f"otel_memory: {HEALTH_PATH} could not be answered: OSError at test_web_health.py:")
    assert "s3cr3t" not in caplog.text and "/srv" not in caplog.text
