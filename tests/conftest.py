"""Shared fixtures: an SDK MeterProvider with an in-memory reader, and tool requirements."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools" / "root"


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


def collect(reader: InMemoryMetricReader) -> dict[str, Any]:
    """{metric name: Metric} of one collection."""
    data = reader.get_metrics_data()
    result: dict[str, Any] = {}
    if data is None:
        return result
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                result[metric.name] = metric
    return result


def points(metrics: dict[str, Any], name: str) -> list[tuple[Any, dict[str, Any]]]:
    """(value, attributes) of every data point of ``name`` (histograms give their count)."""
    metric = metrics.get(name)
    if metric is None:
        return []
    result = []
    for point in metric.data.data_points:
        value = getattr(point, "value", None)
        if value is None:
            value = point.count
        result.append((value, dict(point.attributes or {})))
    return result


def require_tool(name: str) -> str:
    """The path of an external tool: from .tools (installed by `make test`) or PATH.

    Skips the test when the tool is missing, except under CI=true, where it fails.
    """
    candidates = [TOOLS / "usr" / "bin" / name]
    # PostgreSQL keeps its programs under /usr/lib/postgresql/<major>/bin, off PATH: ours from
    # .tools first, then a system installation; the newest major version of each.
    for prefix in (TOOLS / "usr", Path("/usr")):
        versions = sorted((prefix / "lib" / "postgresql").glob("*/bin"),
                          key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
        candidates.extend(directory / name for directory in reversed(versions))
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed; run `make test` (scripts/install-tools.sh) to fetch it"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")


def cgroup_v2_container(tmp_path: Path, *, limit_mb: int = 1000, inactive_file_mb: int = 100,
                        oom_kills: int = 0) -> tuple[Path, Path]:
    """(proc root, cgroup root) of a cgroup v2 container with a memory limit, for a manager's
    ``proc_root``/``cgroup_root``: this process's real statm, memory.max, memory.events and
    memory.stat. The test writes memory.current itself."""
    mb = 1024 * 1024
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text("0::/\n")
    (proc / "self" / "statm").write_text(Path("/proc/self/statm").read_text())
    root.mkdir()
    (root / "cgroup.controllers").write_text("memory\n")
    (root / "memory.max").write_text(f"{limit_mb * mb}\n")
    (root / "memory.events").write_text(f"oom 0\noom_kill {oom_kills}\n")
    (root / "memory.stat").write_text(f"inactive_file {inactive_file_mb * mb}\n")
    return proc, root


def rss_mb() -> float:
    """This process's resident set size in MB, read as the manager reads it."""
    from otel_memory import probes

    return probes.read_statm("/proc/self/statm")[0] / (1024 * 1024)


def manager_with_limit(limit_mb: float, provider: MeterProvider | None = None, *,
                       admission: bool = True) -> Any:
    """An initialized MemoryManager with a configured limit (its level follows from this RSS),
    no leak detector and a monitor that stays out of the way (60 s ticks)."""
    from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
    from otel_memory.manager import MemoryManager

    manager = MemoryManager(MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=limit_mb, monitoring_interval_ms=60_000),
        enable_leak_detection=False, enable_admission_control=admission), meter_provider=provider)
    manager.initialize()
    return manager


@pytest.fixture
def instrument_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """MEMORY_* for instrument(): no leak detector, 50 ms ticks; the process-wide manager is
    stopped afterwards."""
    from otel_memory.global_manager import uninstrument

    monkeypatch.setenv("MEMORY_ENABLE_LEAK_DETECTION", "false")
    monkeypatch.setenv("MEMORY_MONITORING_INTERVAL_MS", "50")
    yield
    uninstrument()


@pytest.fixture
def roomy_manager(meter_provider: MeterProvider) -> Iterator[Any]:
    """A manager whose limit is far above this process's RSS: LOW pressure."""
    manager = manager_with_limit(rss_mb() * 4 + 200, meter_provider)
    yield manager
    manager.shutdown()


@pytest.fixture
def critical_manager(meter_provider: MeterProvider) -> Iterator[Any]:
    """A manager whose limit is half this process's RSS: CRITICAL from the first tick."""
    manager = manager_with_limit(rss_mb() / 2, meter_provider)
    yield manager
    manager.shutdown()
