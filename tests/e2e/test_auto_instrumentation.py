"""`opentelemetry-instrument` turns otel_memory on with no code change: OTLP gRPC, OTLP HTTP, Prometheus.

Each test runs a small allocating app in a subprocess under the virtualenv's
``opentelemetry-instrument``; the ``memory`` entry point (pyproject) loads MemoryInstrumentor.
The metrics are received by a real OTLP receiver or scraped from the real Prometheus exporter.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_memory import catalog
from otel_memory.catalog import Instrument, MetricSpec
from tests.conftest import require_tool

from .otlp_receiver import OtlpReceiver, point_attributes

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"

APP = textwrap.dedent(
    """
    import gc, sys, time
    kept = []
    print("app started", flush=True)
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        kept.append([{"n": i} for i in range(2000)])
        if len(kept) > 50:
            kept.clear()
            gc.collect()
        time.sleep(0.02)
    """
)

# Emitted by every process whatever its platform: the foundation's always-on signals.
REQUIRED: tuple[MetricSpec, ...] = (
    catalog.MEMORY_ALLOCATED,
    catalog.MEMORY_PEAK,
    catalog.MEMORY_PRESSURE_LEVEL,
    catalog.MEMORY_ALLOCATED_BLOCKS,
    catalog.PROCESS_MEMORY_USAGE,
    catalog.PROCESS_MEMORY_VIRTUAL,
    catalog.PROCESS_PAGING_FAULTS,
    catalog.MEMORY_LIMIT,
    catalog.MEMORY_UTILIZATION,
    catalog.MEMORY_THRESHOLD,
    catalog.CPYTHON_GC_COLLECTIONS,
    catalog.CPYTHON_GC_COLLECTED_OBJECTS,
    catalog.CPYTHON_GC_UNCOLLECTABLE_OBJECTS,
    catalog.MEMORY_GC_PAUSE_DURATION,
    catalog.MEMORY_GC_PAUSE_TIME,
    catalog.MEMORY_PRESSURE_TRANSITIONS,
    catalog.MEMORY_TREND_GROWTH_RATE,
    catalog.MEMORY_TREND_DIRECTION,
    catalog.MEMORY_TREND_AVERAGE,
)
FOUNDATION_GROUPS = (catalog.Group.PROCESS, catalog.Group.GC, catalog.Group.PRESSURE)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


def _environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OTEL_", "MEMORY_"))}
    env.update({
        "OTEL_SERVICE_NAME": "otel-memory-e2e",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        # The peer registers process.memory.usage too; only ours is under test.
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "system_metrics",
        "MEMORY_MONITORING_INTERVAL_MS": "200",
        "MEMORY_ENABLE_LEAK_DETECTION": "false",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def _run(app: Path, env: dict[str, str], *options: str, seconds: float = 30) -> subprocess.Popen[str]:
    assert INSTRUMENT.exists(), f"{INSTRUMENT} is missing: opentelemetry-instrumentation is not installed"
    return subprocess.Popen(
        [str(INSTRUMENT), *options, sys.executable, str(app), str(seconds)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.terminate()
    _out, errors = process.communicate(timeout=20)
    return errors


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


def _received_all(rx: OtlpReceiver) -> bool:
    names = rx.metric_names()
    if not all(spec.name in names for spec in REQUIRED):
        return False
    pauses = rx.metrics(catalog.MEMORY_GC_PAUSE_DURATION.name)
    return any(point.count > 0 for metric in pauses for point in metric.histogram.data_points)


def _assert_otlp_metrics(rx: OtlpReceiver) -> None:
    for spec in REQUIRED:
        metrics = rx.metrics(spec.name)
        assert metrics, f"{spec.name} never arrived"
        metric = metrics[-1]
        assert metric.unit == spec.unit, f"{spec.name}: unit {metric.unit!r}, catalogue {spec.unit!r}"
        assert metric.description == spec.description
        kind = metric.WhichOneof("data")
        expected_kind = {Instrument.HISTOGRAM: "histogram", Instrument.OBSERVABLE_GAUGE: "gauge",
                         Instrument.OBSERVABLE_COUNTER: "sum",
                         Instrument.OBSERVABLE_UP_DOWN_COUNTER: "sum"}[spec.instrument]
        assert kind == expected_kind, f"{spec.name} arrived as {kind}, expected {expected_kind}"
        if kind == "sum":
            assert metric.sum.is_monotonic == (spec.instrument is Instrument.OBSERVABLE_COUNTER)
        for attributes in point_attributes(metric):
            assert set(attributes) == set(spec.attributes), (
                f"{spec.name}: attributes {sorted(attributes)}, catalogue {spec.attributes}")
    # Values and attribute values that identify the process and its generations.
    limit = rx.metrics(catalog.MEMORY_LIMIT.name)[-1]
    source = point_attributes(limit)[0][catalog.ATTR_LIMIT_SOURCE]
    assert source in {"config", "cgroup_v2", "cgroup_v1", "rlimit_as", "physical"}
    assert limit.gauge.data_points[0].as_int > 0
    generations = {a[catalog.ATTR_GC_GENERATION]
                   for a in point_attributes(rx.metrics(catalog.CPYTHON_GC_COLLECTIONS.name)[-1])}
    assert generations == {0, 1, 2}
    rss = rx.metrics(catalog.MEMORY_ALLOCATED.name)[-1].gauge.data_points[0].as_int
    assert 5 * 1024 * 1024 < rss < 2 * 1024**3
    pause = rx.metrics(catalog.MEMORY_GC_PAUSE_DURATION.name)[-1].histogram.data_points[0]
    assert list(pause.explicit_bounds) == list(catalog.PAUSE_BUCKETS_S)
    assert any(resource.get("service.name") == "otel-memory-e2e" for resource in rx.resources())


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_otlp_export_under_opentelemetry_instrument(
        app: Path, receiver: OtlpReceiver, protocol: str) -> None:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    process = _run(app, _environment(OTEL_METRICS_EXPORTER="otlp",
                                     OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                                     OTEL_EXPORTER_OTLP_ENDPOINT=endpoint))
    try:
        arrived = receiver.wait_for(_received_all, timeout=40)
    finally:
        errors = _stop(process)
    assert arrived, (f"missing over {protocol}: "
                     f"{sorted(s.name for s in REQUIRED if s.name not in receiver.metric_names())}\n"
                     f"stderr:\n{errors[-3000:]}")
    _assert_otlp_metrics(receiver)
    assert "not instrumented" not in errors, errors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ")
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)


def test_prometheus_exporter_names_match_the_catalogue(app: Path) -> None:
    port = _free_port()
    process = _run(app, _environment(OTEL_METRICS_EXPORTER="prometheus",
                                     OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
                                     OTEL_EXPORTER_PROMETHEUS_PORT=str(port)),
                   "--metrics_exporter", "prometheus")
    required = {spec.prometheus_name for spec in REQUIRED}
    text, samples = "", set()
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                text = _scrape(port)
            except (urllib.error.URLError, ConnectionError):
                continue
            samples = {m.group(1) for line in text.splitlines() if (m := _SAMPLE.match(line))}
            if required <= {_family(name) for name in samples} and (
                    catalog.MEMORY_GC_PAUSE_DURATION.prometheus_name + "_count") in samples:
                break
    finally:
        errors = _stop(process)
    families = {_family(name) for name in samples}
    assert required <= families, (f"missing: {sorted(required - families)}\n"
                                  f"stderr:\n{errors[-3000:]}")
    # The original design's names, exactly; memory_allocation_count is a recording rule over
    # memory_allocated_blocks (exported under its own name it would fail promtool's lint).
    for name in ("memory_allocated_bytes", "memory_peak_bytes", "memory_pressure_level",
                 "memory_allocated_blocks"):
        assert name in families
    assert "memory_allocation_count" not in families
    # The real scrape passes promtool check metrics.
    promtool = require_tool("promtool")
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=60, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # Every foundation metric the exporter emitted has exactly the catalogue's Prometheus name
    # and type: the catalogue's naming rules hold against the real exporter.
    foundation = list(catalog.in_group(*FOUNDATION_GROUPS)) + [
        spec for spec in catalog.in_group(catalog.Group.LEAK, catalog.Group.RESPONSE)
        if spec.name.startswith(("memory.trend.", "memory.pressure.", "memory.admission."))]
    types = dict(_TYPE.findall(text))
    known = {spec.prometheus_name: spec for spec in foundation}
    ours = {name for name in families
            if name.startswith(("memory_", "cpython_", "process_memory_", "process_paging_",
                                "container_memory_"))}
    unknown = ours - set(known)
    assert not unknown, f"exported names the catalogue does not derive: {sorted(unknown)}"
    for name in ours:
        spec = known[name]
        assert types.get(name) == spec.instrument.prometheus_type, (
            f"{name}: TYPE {types.get(name)}, catalogue {spec.instrument.prometheus_type}")
        for label in spec.prometheus_labels:
            assert re.search(rf"^{name}[a-z_]*\{{[^}}]*\b{label}=", text, re.MULTILINE), (
                f"{name} has no label {label}")
    assert ours >= {spec.prometheus_name for spec in REQUIRED}


def _family(sample_name: str) -> str:
    """The metric family of a sample: histogram samples end in _bucket, _sum, _count."""
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix):
            base = sample_name[: -len(suffix)]
            if base.endswith("_seconds"):
                return base
    return sample_name


def test_bad_configuration_is_logged_and_the_app_runs_uninstrumented(
        app: Path, receiver: OtlpReceiver) -> None:
    process = _run(app, _environment(OTEL_METRICS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
                                     OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
                                     MEMORY_MAX_HEAP_MB="lots"), seconds=2)
    output, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert "app started" in output
    assert "otel_memory: not instrumented" in errors
    assert "MEMORY_MAX_HEAP_MB='lots'" in errors and "expected a number" in errors
    assert catalog.MEMORY_ALLOCATED.name not in receiver.metric_names()


EXITING_APP = textwrap.dedent(
    """
    import sys
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from otel_memory import MemoryManagementConfig, MemoryManager

    exporter = OTLPMetricExporter(endpoint=sys.argv[1], insecure=True)
    provider = MeterProvider(metric_readers=[
        PeriodicExportingMetricReader(exporter, export_interval_millis=600_000)])
    manager = MemoryManager(MemoryManagementConfig(enable_leak_detection=False),
                            meter_provider=provider)
    manager.initialize()
    # exits without shutdown(): only the SDK's exit hook exports, once
    """
)


def test_the_export_at_exit_still_carries_the_memory_metrics(
        tmp_path: Path, receiver: OtlpReceiver) -> None:
    script = tmp_path / "exiting_app.py"
    script.write_text(EXITING_APP)
    env = _environment()
    completed = subprocess.run([sys.executable, str(script), receiver.grpc_endpoint], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert receiver.wait_for(lambda rx: catalog.MEMORY_ALLOCATED.name in rx.metric_names(), timeout=10), (
        f"the exit export had only {sorted(receiver.metric_names())}")
