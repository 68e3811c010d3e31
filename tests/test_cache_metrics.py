"""The memory.cache.* instruments: one set per meter provider, read from every live cache."""

from __future__ import annotations

import gc
import logging
import sys
from types import FrameType
from typing import Any

import cachetools
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog as c
from otel_memory.cache import SmartCache, instrument_cachetools
from tests.conftest import collect, points

NAME = c.ATTR_CACHE_NAME


def by_attributes(metrics: dict[str, Any], spec: c.MetricSpec) -> dict[frozenset[Any], float]:
    return {frozenset(attributes.items()): value for value, attributes in points(metrics, spec.name)}


def test_every_cache_metric_is_exported_with_its_catalogue_identity(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    cache: SmartCache[str, bytes] = SmartCache(None, 2, 1, None, name="users", sizer=len,
                                               meter_provider=meter_provider)
    cache.insert("a", b"1" * 100)
    cache.insert("b", b"2" * 100)
    cache.get("a")
    cache.get("zzz")
    cache.insert("c", b"3" * 100)                  # evicts b (size)
    cache.pop("a")                                 # explicit
    cache.get_or_load("d", lambda key: b"4")       # a load; evicts nothing (2 entries)
    metrics = collect(reader)
    for spec in c.in_group(c.Group.CACHE):
        assert spec.name in metrics, spec.name
        assert metrics[spec.name].unit == spec.unit
    requests = by_attributes(metrics, c.MEMORY_CACHE_REQUESTS)
    assert requests[frozenset({(c.ATTR_CACHE_RESULT, "hit"), (NAME, "users")})] == 1
    assert requests[frozenset({(c.ATTR_CACHE_RESULT, "miss"), (NAME, "users")})] == 2
    assert points(metrics, c.MEMORY_CACHE_ENTRIES.name) == [(2, {NAME: "users"})]
    assert points(metrics, c.MEMORY_CACHE_ENTRIES_LIMIT.name) == [(2, {NAME: "users"})]
    assert points(metrics, c.MEMORY_CACHE_USAGE.name) == [(cache.usage_bytes, {NAME: "users"})]
    assert points(metrics, c.MEMORY_CACHE_USAGE_LIMIT.name) == [(1024 * 1024, {NAME: "users"})]
    evictions = by_attributes(metrics, c.MEMORY_CACHE_EVICTIONS)
    reason = c.ATTR_CACHE_EVICTION_REASON
    assert evictions[frozenset({(reason, "size"), (NAME, "users")})] == 1
    assert evictions[frozenset({(reason, "explicit"), (NAME, "users")})] == 1
    assert evictions[frozenset({(reason, "memory"), (NAME, "users")})] == 0
    evicted = by_attributes(metrics, c.MEMORY_CACHE_EVICTED)
    assert evicted[frozenset({(reason, "size"), (NAME, "users")})] == cache.entry_size("b", b"2" * 100)
    loads = by_attributes(metrics, c.MEMORY_CACHE_LOADS)
    assert loads[frozenset({(c.ATTR_CACHE_LOAD_RESULT, "success"), (NAME, "users")})] == 1
    assert points(metrics, c.MEMORY_CACHE_LOAD_DURATION.name) == [(1, {NAME: "users"})]


def test_many_caches_share_one_set_of_instruments(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    first: SmartCache[int, int] = SmartCache(None, 10, 1, None, name="first", meter_provider=meter_provider)
    second: SmartCache[int, int] = SmartCache(None, 10, 1, None, name="second", meter_provider=meter_provider)
    twin: SmartCache[int, int] = SmartCache(None, 10, 1, None, name="second", meter_provider=meter_provider)
    first.insert(1, 1)
    second.insert(1, 1)
    twin.insert(1, 1)
    twin.insert(2, 2)
    entries = {a[NAME]: v for v, a in points(collect(reader), c.MEMORY_CACHE_ENTRIES.name)}
    assert entries == {"first": 1, "second": 3}          # same-name caches are added up
    twin.close()
    del second
    gc.collect()
    entries = {a[NAME]: v for v, a in points(collect(reader), c.MEMORY_CACHE_ENTRIES.name)}
    assert entries == {"first": 1}                       # closed and collected caches are gone


def test_a_hit_makes_no_opentelemetry_call(meter_provider: MeterProvider) -> None:
    cache: SmartCache[str, str] = SmartCache(None, 10, 1, 60, name="hot", meter_provider=meter_provider)
    cache.insert("k", "v")
    called: list[str] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            called.append(frame.f_globals.get("__name__", ""))
        elif event == "c_call":
            called.append(getattr(arg, "__module__", None) or getattr(arg, "__qualname__", ""))

    def calls_during(action: Any) -> list[str]:
        called.clear()
        sys.setprofile(profile)
        try:
            action()
        finally:
            sys.setprofile(None)
        return [name for name in called if name and "opentelemetry" in name]

    assert calls_during(lambda: cache.get("k")) == []
    assert calls_during(lambda: cache.get_or_load("k", str)) == []
    assert calls_during(lambda: cache.get("missing")) == []
    # The profiler does see OpenTelemetry: a load records its duration histogram.
    assert calls_during(lambda: cache.get_or_load("new", str)) != []


GLOBAL_PROVIDER_SCRIPT = """
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otel_memory import catalog as c
from otel_memory.cache import SmartCache

before = SmartCache(name="before")
before.insert(1, 1)
reader = InMemoryMetricReader()
provider = MeterProvider(metric_readers=[reader])
metrics.set_meter_provider(provider)
after = SmartCache(name="after")
after.insert(1, 1)
explicit = SmartCache(name="explicit", meter_provider=provider)
found = {}
for resource_metrics in reader.get_metrics_data().resource_metrics:
    for scope_metrics in resource_metrics.scope_metrics:
        for metric in scope_metrics.metrics:
            if metric.name == c.MEMORY_CACHE_ENTRIES.name:
                for point in metric.data.data_points:
                    found[point.attributes[c.ATTR_CACHE_NAME]] = point.value
print(sorted(found.items()))
"""


def test_caches_of_the_global_provider_report_before_and_after_it_is_set() -> None:
    import subprocess

    result = subprocess.run([sys.executable, "-c", GLOBAL_PROVIDER_SCRIPT], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[('after', 1), ('before', 1), ('explicit', 0)]"


class BrokenSizeCache(cachetools.LRUCache):  # type: ignore[type-arg]
    """A user's cache whose fill cannot be read once ``broken`` (a bug in their subclass)."""

    broken = False

    @property
    def currsize(self) -> int:
        if self.broken:
            raise RuntimeError("size of tenant s3cr3t unknown")
        return int(super().currsize)


def test_a_cache_whose_stats_fail_is_left_out_and_the_others_still_report(
        meter_provider: MeterProvider, reader: InMemoryMetricReader,
        caplog: pytest.LogCaptureFixture) -> None:
    broken = BrokenSizeCache(maxsize=10)
    handle = instrument_cachetools(broken, name="broken", meter_provider=meter_provider)
    broken.broken = True
    cache: SmartCache[str, bytes] = SmartCache(None, 10, 1, None, name="healthy", sizer=len,
                                               meter_provider=meter_provider)
    cache.insert("a", b"1" * 100)
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        first, second = collect(reader), collect(reader)
    for metrics in (first, second):
        entries = by_attributes(metrics, c.MEMORY_CACHE_ENTRIES)
        assert entries == {frozenset({(NAME, "healthy")}): 1}
    warnings = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert warnings == [warnings[0]] and "'broken'" in warnings[0] and "RuntimeError at" in warnings[0]
    assert "s3cr3t" not in caplog.text
    handle.close()
    cache.close()
