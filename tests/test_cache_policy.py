"""The cache pressure policy, and a real MemoryManager driven through its levels.

The manager reads this process's RSS from ``<proc_root>/self/statm``; the tests give it a
proc root whose statm they write, so the levels follow configured limits, not real exhaustion.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog as c
from otel_memory.cache import CachePressurePolicy, SmartCache
from otel_memory.config import MB, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.errors import CacheRefused, ConfigError
from otel_memory.manager import MemoryManager
from otel_memory.pressure import MemoryPressure
from tests.conftest import collect, points

PAGE = os.sysconf("SC_PAGE_SIZE")


class DrivenManager:
    """A started MemoryManager whose RSS reading the test sets."""

    def __init__(self, root: Path, meter_provider: MeterProvider) -> None:
        (root / "self").mkdir(parents=True)
        self._statm = root / "self" / "statm"
        self.set_rss_mb(100)
        config = MemoryManagementConfig(
            monitor_config=MemoryLimitConfig(
                max_heap_mb=1000, warning_threshold_mb=600, gc_pressure_threshold_mb=700,
                critical_threshold_mb=800, hysteresis_mb=10, monitoring_interval_ms=600_000),
            enable_leak_detection=False, enable_admission_control=True)
        self.manager = MemoryManager(config, meter_provider=meter_provider, proc_root=root,
                                     cgroup_root=root / "no-cgroup")
        self.manager.initialize()

    def set_rss_mb(self, megabytes: float) -> None:
        pages = int(megabytes * MB) // PAGE
        self._statm.write_text(f"{pages * 2} {pages} 100 10 0 {pages} 0\n")

    def drive(self, megabytes: float) -> MemoryPressure:
        self.set_rss_mb(megabytes)
        return self.manager.check_pressure()


@pytest.fixture
def driven(tmp_path: Path, meter_provider: MeterProvider) -> Iterator[DrivenManager]:
    driver = DrivenManager(tmp_path / "proc", meter_provider)
    yield driver
    driver.manager.shutdown()


def test_default_policy_follows_the_original_design() -> None:
    policy = CachePressurePolicy()
    assert [policy.budget_fraction(level) for level in MemoryPressure] == [1.0, 0.75, 0.5, 0.0]
    assert [policy.refuses_inserts(level) for level in MemoryPressure] == [False, False, False, True]


@pytest.mark.parametrize(("arguments", "message"), [
    ({"moderate": 1.5}, "moderate=1.5"), ({"high": -0.1}, "high=-0.1"),
    ({"critical": "none"}, "critical='none'"),
    ({"moderate": 0.4, "high": 0.5}, "critical <= high <= moderate"),
])
def test_bad_policy_is_a_clear_error(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        CachePressurePolicy(**arguments)  # type: ignore[arg-type]


def _fill(cache: SmartCache[int, bytes], count: int) -> None:
    for key in range(count):
        cache.insert(key, bytes(10_000))


def test_manager_levels_shrink_clear_and_restore_the_cache(
        driven: DrivenManager, reader: InMemoryMetricReader) -> None:
    manager = driven.manager
    cache: SmartCache[int, bytes] = SmartCache(manager, 1000, 1, None, name="driven", sizer=len)
    assert cache in manager.responders()
    _fill(cache, 100)
    full = cache.usage_bytes
    assert full > 0.9 * MB

    assert driven.drive(650) == MemoryPressure.MODERATE
    assert cache.budget_bytes == int(0.75 * MB) and 0.7 * MB < cache.usage_bytes <= 0.75 * MB
    assert list(cache)[-1] == 99                            # the most recent entries stay
    assert driven.drive(750) == MemoryPressure.HIGH
    assert cache.budget_bytes == int(0.5 * MB) and 0.45 * MB < cache.usage_bytes <= 0.5 * MB
    assert driven.drive(850) == MemoryPressure.CRITICAL
    assert len(cache) == 0 and cache.usage_bytes == 0
    with pytest.raises(CacheRefused, match="Critical"):
        cache.insert(1, b"x")
    assert manager.actions["cache_shrink"] == 3

    metrics = collect(reader)
    assert points(metrics, c.MEMORY_CACHE_USAGE_LIMIT.name) == [(0, {c.ATTR_CACHE_NAME: "driven"})]
    pressure = {a[c.ATTR_CACHE_EVICTION_REASON]: v for v, a in points(metrics, c.MEMORY_CACHE_EVICTIONS.name)}
    assert pressure["pressure"] == 100 and pressure["memory"] == 0
    actions = points(metrics, c.MEMORY_PRESSURE_ACTIONS.name)
    assert (3, {c.ATTR_PRESSURE_ACTION: "cache_shrink"}) in actions

    assert driven.drive(795) == MemoryPressure.CRITICAL      # inside the hysteresis band
    assert driven.drive(300) == MemoryPressure.LOW
    assert cache.budget_bytes == MB and not cache.refusing
    _fill(cache, 100)
    assert cache.usage_bytes == full                         # the whole budget is usable again
    assert manager.actions["cache_shrink"] == 3              # recovering is not an action


def test_cache_created_under_pressure_starts_reduced(driven: DrivenManager) -> None:
    driven.drive(750)
    cache: SmartCache[int, bytes] = SmartCache(driven.manager, 10, 1, None, name="late")
    assert cache.budget_bytes == int(0.5 * MB)


def test_replaced_policy_is_followed(driven: DrivenManager) -> None:
    gentle = CachePressurePolicy(moderate=0.9, high=0.8, critical=0.3, refuse_when_critical=False)
    cache: SmartCache[int, bytes] = SmartCache(driven.manager, 1000, 1, None, name="gentle",
                                               sizer=len, pressure_policy=gentle)
    _fill(cache, 100)
    driven.drive(850)
    assert 0.25 * MB < cache.usage_bytes <= 0.3 * MB
    cache.insert(1000, b"accepted")                          # no refusal with this policy
    assert 1000 in cache


def test_cache_metrics_use_the_managers_meter_provider(
        driven: DrivenManager, reader: InMemoryMetricReader) -> None:
    cache: SmartCache[str, str] = SmartCache(driven.manager, 10, 1, 60, name="via_manager")
    cache.insert("a", "b")
    cache.get("a")
    metrics = collect(reader)
    assert (1, {c.ATTR_CACHE_NAME: "via_manager", c.ATTR_CACHE_RESULT: "hit"}) in points(
        metrics, c.MEMORY_CACHE_REQUESTS.name)
