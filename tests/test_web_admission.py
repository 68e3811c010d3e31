"""The admission gate shared by the WSGI and ASGI middleware: the level a request is recorded
under is the one admission decided on."""

from __future__ import annotations

import os
import time
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider

from otel_memory import manager as manager_module
from otel_memory.config import MB, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.manager import MemoryManager
from otel_memory.pressure import MemoryPressure
from otel_memory.probes import PAGE_SIZE
from otel_memory.web.admission import AdmissionGate


def _set_rss(proc: Path, mb: int) -> None:
    pages = mb * MB // PAGE_SIZE
    staged = proc / "self" / "statm.new"
    staged.write_text(f"{2 * pages} {pages} 0 0 0 0 0\n")
    os.replace(staged, proc / "self" / "statm")


def test_a_request_is_recorded_under_the_level_admission_decided_on(
        tmp_path: Path, meter_provider: MeterProvider) -> None:
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text("0::/\n")
    cgroup.mkdir()
    _set_rss(proc, 650)
    config = MemoryManagementConfig(monitor_config=MemoryLimitConfig(
        max_heap_mb=1000, warning_threshold_mb=600, gc_pressure_threshold_mb=700,
        critical_threshold_mb=800, hysteresis_mb=10, monitoring_interval_ms=60_000),
        enable_leak_detection=False)
    with MemoryManager(config, meter_provider=meter_provider, proc_root=proc,
                       cgroup_root=cgroup) as manager:
        gate = AdmissionGate(manager, point="test")
        assert gate.enter("/work") == (MemoryPressure.MODERATE, None)
        _set_rss(proc, 850)                # no monitoring tick since: admission reads it
        time.sleep(2 * manager_module.ADMISSION_ELEVATED_AGE_S)
        level, refusal = gate.enter("/work")
        assert refusal is not None and refusal.status == 503
        assert level == MemoryPressure.CRITICAL, "a 503 is recorded as critical"
        _set_rss(proc, 650)
        time.sleep(2 * manager_module.ADMISSION_ELEVATED_AGE_S)
        assert gate.enter("/work") == (MemoryPressure.MODERATE, None)
