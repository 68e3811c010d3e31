"""The demo's leak plan and table: times, changes since the last table, suspects by name."""

from __future__ import annotations

import re
import time

from otel_memory import catalog as c
from otel_memory.config import MB
from otel_memory.demo import LeakPlan, render_table
from otel_memory.leak import LeakSuspect


def test_the_leak_reaches_past_the_critical_threshold_in_the_ramp_and_stays_below_the_limit() -> None:
    plan = LeakPlan.for_limit(start=60 * MB, limit=128 * MB, critical=112 * MB, ramp_s=90)
    assert 112 * MB < plan.target < 128 * MB
    assert plan.wanted(0) == 60 * MB
    assert plan.wanted(45) == 60 * MB + (plan.target - 60 * MB) // 2
    assert plan.wanted(90) == plan.wanted(600) == plan.target
    # Whatever the limit, CRITICAL within the ramp: the rate follows the limit.
    for limit_mb in (128, 512, 2048):
        limit = limit_mb * MB
        plan = LeakPlan.for_limit(start=60 * MB, limit=limit, critical=limit * 7 // 8, ramp_s=90)
        assert plan.wanted(90) > limit * 7 // 8 and plan.wanted(90) < limit


def test_a_limit_below_the_start_leaks_nothing() -> None:
    plan = LeakPlan.for_limit(start=200 * MB, limit=128 * MB, critical=112 * MB, ramp_s=90)
    assert plan.wanted(0) == plan.wanted(90) == 200 * MB


def _values(rss_mb: float, collections: int) -> dict[str, list[tuple[float, dict[str, object]]]]:
    return {
        c.MEMORY_ALLOCATED.name: [(rss_mb * MB, {})],
        c.MEMORY_PEAK.name: [(rss_mb * MB, {})],
        c.MEMORY_LIMIT.name: [(128 * MB, {c.ATTR_LIMIT_SOURCE: "config"})],
        c.MEMORY_UTILIZATION.name: [(100 * rss_mb / 128, {})],
        c.MEMORY_PRESSURE_LEVEL.name: [(3.0, {})],
        c.CPYTHON_GC_COLLECTIONS.name: [(collections, {c.ATTR_GC_GENERATION: 0})],
    }


def test_the_table_has_the_time_and_the_change_since_the_last_one() -> None:
    at = time.mktime((2025, 1, 2, 12, 30, 5, 0, 0, -1))
    first, numbers = render_table(_values(100, 40), at=at, elapsed_s=35)
    assert first.splitlines()[0] == "--- 12:30:05 (+35 s) ---"
    change = re.compile(r"  [+-][0-9.]+( MB| %)?$")
    assert not [line for line in first.splitlines()[1:] if change.search(line)]   # nothing to compare yet
    second, _ = render_table(_values(103.5, 52), previous=numbers, at=at + 5)
    rows = {line.split("  ")[0]: line for line in second.splitlines()[1:]}
    assert rows["rss / peak"].endswith("+3.5 MB")
    assert rows["gc collections / pause"].endswith("+12")
    assert re.search(r"CRITICAL$", rows["pressure"])


def test_suspects_are_shown_once_each_by_name_with_their_growth() -> None:
    leak = LeakSuspect("myapp.Session", count_delta=8000, size_delta=3 * MB, growth_bytes_per_s=2048.0,
                       score=0.9, snapshots=5)
    container = LeakSuspect("dict", count_delta=400, size_delta=MB, growth_bytes_per_s=512.0, score=0.9,
                            snapshots=6, kind="container", item_type="str", attribute="myapp.cache:_SESSIONS")
    table, _ = render_table(_values(100, 40), suspects=[leak, container, leak])
    lines = table.splitlines()
    assert lines.count("  type myapp.Session: +2.0 KB/s, +8000 objects, +3.0 MB") == 1
    assert "  container dict of str at myapp.cache:_SESSIONS: +0.5 KB/s, +400 objects, +1.0 MB" in lines
