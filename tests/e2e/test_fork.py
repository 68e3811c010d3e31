"""After os.fork a child reports its own process, and none of the parent's counts.

A subprocess starts a MemoryManager with a real SDK MeterProvider, does some work that the
counters see (a pressure transition, a pressure action, full collections), then forks. The
child allocates 200 MB more than the parent; both collect their metrics through the SDK and
print them as JSON, then wait while this test measures their RSS from outside with psutil.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
import pytest

from otel_memory import catalog

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
CHILD_EXTRA_MB = 200

SCRIPT = textwrap.dedent(
    """
    import gc, json, os, sys, threading, time
    import psutil
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from otel_memory import MemoryLimitConfig, MemoryManagementConfig, MemoryManager

    MB = 1024 * 1024
    rss_mb = psutil.Process().memory_info().rss / MB
    # Warning below today's RSS: the parent enters MODERATE at once (one transition).
    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(
            max_heap_mb=rss_mb + 4000, warning_threshold_mb=rss_mb / 2,
            critical_threshold_mb=rss_mb + 3000, monitoring_interval_ms=100),
        enable_leak_detection=False)
    reader = InMemoryMetricReader()
    manager = MemoryManager(config, meter_provider=MeterProvider(metric_readers=[reader]))
    manager.initialize()
    manager.record_action("gc_collect", 4096)
    for _ in range(5):
        gc.collect()
    time.sleep(0.3)

    def report(role, ballast=None):
        time.sleep(0.7)          # past the shared sample's freshness window
        metrics = {}
        for rm in reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    metrics[metric.name] = [
                        [getattr(p, "value", None) if hasattr(p, "value") else p.count,
                         dict(p.attributes)] for p in metric.data.data_points]
        stats = manager.get_memory_stats()
        threads = sorted(t.name for t in threading.enumerate())
        print(json.dumps({"role": role, "pid": os.getpid(), "stats_pid": stats.pid,
                          "metrics": metrics, "threads": threads,
                          "pause_counts": list(manager.gc_watch.counts)}), flush=True)

    child = os.fork()
    if child == 0:
        ballast = bytearray(b"\\x01") * (EXTRA_MB * MB)
        report("child", ballast)
        sys.stdin.readline()
        os._exit(0)
    report("parent")
    os.waitpid(child, 0)
    manager.shutdown()
    """
).replace("EXTRA_MB", str(CHILD_EXTRA_MB))


def _value(report: dict[str, Any], name: str, **attributes: Any) -> Any:
    for value, point_attributes in report["metrics"].get(name, []):
        if all(point_attributes.get(key) == wanted for key, wanted in attributes.items()):
            return value
    return None


def test_forked_child_reports_its_own_memory_and_counts(tmp_path: Path) -> None:
    script = tmp_path / "fork_app.py"
    script.write_text(SCRIPT)
    process = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        reports: dict[str, dict[str, Any]] = {}
        for _ in range(2):
            line = process.stdout.readline()
            assert line, f"the app ended early: {process.stderr.read() if process.stderr else ''}"
            report = json.loads(line)
            reports[report["role"]] = report
        parent, child = reports["parent"], reports["child"]
        # Measured from outside while both wait: each reported its own RSS.
        for report in (parent, child):
            measured = psutil.Process(report["pid"]).memory_info().rss
            reported = _value(report, catalog.MEMORY_ALLOCATED.name)
            assert abs(reported - measured) < max(0.1 * measured, 20 * MB), (
                f"{report['role']} reported {reported / MB:.0f} MB, measured {measured / MB:.0f} MB")
        process.stdin.write("done\n")
        process.stdin.flush()
        _out, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors

    assert child["pid"] != parent["pid"]
    assert child["stats_pid"] == child["pid"] and parent["stats_pid"] == parent["pid"]
    extra = _value(child, catalog.MEMORY_ALLOCATED.name) - _value(parent, catalog.MEMORY_ALLOCATED.name)
    assert extra > 0.9 * CHILD_EXTRA_MB * MB, f"child has only {extra / MB:.0f} MB more than the parent"
    assert _value(child, catalog.PROCESS_MEMORY_USAGE.name) == _value(child, catalog.MEMORY_ALLOCATED.name)
    assert _value(child, catalog.MEMORY_PEAK.name) >= _value(child, catalog.MEMORY_ALLOCATED.name)
    # The child runs its own monitor thread.
    assert "otel-memory-monitor" in child["threads"]

    # The parent's counts stay with the parent ...
    moderate = {catalog.ATTR_PRESSURE_STATE: "moderate"}
    assert _value(parent, catalog.MEMORY_PRESSURE_TRANSITIONS.name, **moderate) == 1
    action = {catalog.ATTR_PRESSURE_ACTION: "gc_collect"}
    assert _value(parent, catalog.MEMORY_PRESSURE_ACTIONS.name, **action) == 1
    assert _value(parent, catalog.MEMORY_PRESSURE_RECLAIMED.name, **action) == 4096
    gen2 = {catalog.ATTR_GC_GENERATION: 2}
    assert _value(parent, catalog.CPYTHON_GC_COLLECTIONS.name, **gen2) >= 5
    assert parent["pause_counts"][2] >= 5
    assert _value(parent, catalog.MEMORY_GC_PAUSE_TIME.name, **gen2) > 0
    # ... the child starts from zero (it made no full collection and changed no level).
    assert _value(child, catalog.MEMORY_PRESSURE_TRANSITIONS.name, **moderate) == 0
    assert _value(child, catalog.MEMORY_PRESSURE_ACTIONS.name, **action) is None
    assert _value(child, catalog.MEMORY_PRESSURE_RECLAIMED.name, **action) is None
    assert _value(child, catalog.CPYTHON_GC_COLLECTIONS.name, **gen2) == 0
    assert child["pause_counts"][2] == 0
    assert _value(child, catalog.MEMORY_GC_PAUSE_TIME.name, **gen2) == 0
    # The level is about the child's own usage: still MODERATE, not critical.
    assert _value(child, catalog.MEMORY_PRESSURE_LEVEL.name) == 1
    assert os.getpid() not in (child["pid"], parent["pid"])
