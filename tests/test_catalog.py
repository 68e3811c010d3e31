"""The metric catalogue: unique names, Prometheus names by the exporter's rules, complete entries."""

from __future__ import annotations

import re

import pytest

from otel_memory import catalog
from otel_memory.catalog import Instrument, MetricSpec

_PROMETHEUS_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_PROMETHEUS_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_OTEL_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


def test_names_are_unique() -> None:
    names = [spec.name for spec in catalog.ALL]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_prometheus_names_are_unique() -> None:
    names = [spec.prometheus_name for spec in catalog.ALL]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_original_design_names_exist_exactly() -> None:
    prometheus = {spec.prometheus_name: spec for spec in catalog.ALL}
    for name in ("memory_allocated_bytes", "memory_peak_bytes", "memory_pressure_level",
                 "memory_pool_size", "memory_pool_borrowed"):
        assert name in prometheus, f"{name} is not derived from any catalogue entry"
        assert prometheus[name].instrument is Instrument.OBSERVABLE_GAUGE
    # memory_allocation_count as an exported gauge fails promtool's lint (_count is for
    # histograms and summaries): it is the alias (a recording rule) of memory_allocated_blocks.
    aliases = {spec.alias: spec for spec in catalog.ALL if spec.alias}
    assert aliases == {"memory_allocation_count": catalog.MEMORY_ALLOCATED_BLOCKS}
    assert catalog.MEMORY_ALLOCATED_BLOCKS.prometheus_name == "memory_allocated_blocks"
    assert catalog.MEMORY_ALLOCATED_BLOCKS.instrument is Instrument.OBSERVABLE_GAUGE
    assert not set(aliases) & set(prometheus)


def test_exported_names_pass_promtool_lint_rules_but_one_semantic_convention_name() -> None:
    # promtool check metrics: _total only on counters; _count, _sum, _bucket only on histograms.
    problems = {spec.name: spec.promtool_problem for spec in catalog.ALL if spec.promtool_problem}
    assert problems == {"db.client.connection.count":
                        'non-histogram and non-summary metrics should not have "_count" suffix'}
    for spec in catalog.ALL:
        name = spec.prometheus_name
        if spec.name in problems:
            continue
        if spec.instrument is not Instrument.OBSERVABLE_COUNTER:
            assert not name.endswith("_total"), name
        assert not name.endswith(("_count", "_sum", "_bucket")), name
    bad = MetricSpec("memory.things.count", Instrument.OBSERVABLE_GAUGE, "{thing}", "d.",
                     catalog.Group.PROCESS)
    assert bad.promtool_problem == 'non-histogram and non-summary metrics should not have "_count" suffix'


def test_semantic_convention_names_are_used() -> None:
    assert catalog.PROCESS_MEMORY_USAGE.name == "process.memory.usage"
    assert catalog.PROCESS_MEMORY_VIRTUAL.name == "process.memory.virtual"
    assert catalog.PROCESS_PAGING_FAULTS.name == "process.paging.faults"
    assert catalog.CPYTHON_GC_COLLECTIONS.name == "cpython.gc.collections"
    assert catalog.CPYTHON_GC_COLLECTIONS.attributes == ("cpython.gc.generation",)
    assert catalog.CONTAINER_MEMORY_USAGE.name == "container.memory.usage"
    assert catalog.CONTAINER_MEMORY_WORKING_SET.name == "container.memory.working_set"
    for spec in (catalog.CONTAINER_MEMORY_USAGE, catalog.CONTAINER_MEMORY_WORKING_SET,
                 catalog.PROCESS_MEMORY_USAGE, catalog.PROCESS_MEMORY_VIRTUAL):
        assert spec.instrument is Instrument.OBSERVABLE_UP_DOWN_COUNTER and spec.unit == "By", spec.name
    for spec in catalog.ALL:
        assert spec.name.startswith(("memory.", "process.", "cpython.", "db.client.", "container.memory.")), (
            spec.name)
        assert not spec.name.startswith("otel."), "otel. is reserved"
    # No name of ours inside a namespace the conventions define other metrics for.
    assert not [spec.name for spec in catalog.ALL if spec.name.startswith("memory.container.")
                and spec.name.replace("memory.container.", "container.memory.") in
                ("container.memory.usage", "container.memory.working_set")]


def test_shared_families_are_those_system_metrics_reports() -> None:
    shared = {spec.name for spec in catalog.ALL if spec.shared_with == catalog.SYSTEM_METRICS}
    assert shared == {"process.memory.usage", "process.memory.virtual", "cpython.gc.collections",
                      "cpython.gc.collected_objects", "cpython.gc.uncollectable_objects"}


@pytest.mark.parametrize("spec", catalog.ALL, ids=lambda spec: spec.name)
def test_every_metric_is_complete(spec: MetricSpec) -> None:
    assert _OTEL_NAME.match(spec.name), spec.name
    assert spec.unit, f"{spec.name} has no unit"
    assert spec.unit != "1", f"{spec.name}: unit 1 gives _ratio on some paths only"
    assert spec.description and spec.description.endswith("."), spec.name
    assert isinstance(spec.group, catalog.Group)
    assert len(set(spec.attributes)) == len(spec.attributes)
    for label in spec.prometheus_labels:
        assert _PROMETHEUS_LABEL.match(label), label
    if spec.instrument is Instrument.HISTOGRAM:
        assert spec.unit == "s" and spec.buckets, f"{spec.name}: histograms are in seconds with buckets"
        assert list(spec.buckets) == sorted(set(spec.buckets)) and spec.buckets[0] > 0
    else:
        assert spec.buckets is None
    assert catalog.by_name(spec.name) is spec


@pytest.mark.parametrize("spec", catalog.ALL, ids=lambda spec: spec.name)
def test_prometheus_name_follows_the_exporter_rules(spec: MetricSpec) -> None:
    name = spec.prometheus_name
    assert _PROMETHEUS_NAME.match(name), name
    base = spec.name.replace(".", "_")
    counter = spec.instrument is Instrument.OBSERVABLE_COUNTER
    assert name.endswith("_total") == counter, name
    stem = name[: -len("_total")] if counter else name
    suffix = {"By": "_bytes", "s": "_seconds", "%": "_percent", "By/s": "_bytes_per_second"}
    if spec.unit.startswith("{"):
        assert stem == base, f"{spec.unit} adds nothing: {name}"
    else:
        assert spec.unit in suffix, f"{spec.name}: unit {spec.unit} has no rule"
        expected = base if base.endswith(suffix[spec.unit]) else base + suffix[spec.unit]
        assert stem == expected


def test_prometheus_rules_by_example() -> None:
    assert catalog.MEMORY_ALLOCATED.prometheus_name == "memory_allocated_bytes"
    assert catalog.CPYTHON_GC_COLLECTIONS.prometheus_name == "cpython_gc_collections_total"
    assert catalog.MEMORY_GC_PAUSE_DURATION.prometheus_name == "memory_gc_pause_duration_seconds"
    assert catalog.MEMORY_PSI_STALL.prometheus_name == "memory_psi_stall_seconds_total"
    assert catalog.MEMORY_UTILIZATION.prometheus_name == "memory_utilization_percent"
    spec = MetricSpec("x.size_bytes", Instrument.OBSERVABLE_GAUGE, "By", "d.", catalog.Group.PROCESS)
    assert spec.prometheus_name == "x_size_bytes"   # no doubled suffix
    assert catalog.PROCESS_PAGING_FAULTS.prometheus_labels == ("system_paging_fault_type",)


def test_gc_pause_buckets_fit_millisecond_pauses() -> None:
    buckets = catalog.MEMORY_GC_PAUSE_DURATION.buckets
    assert buckets is not None
    assert buckets[0] <= 0.0001 and buckets[-1] >= 0.5
    assert sum(1 for bound in buckets if 0.0001 <= bound <= 0.01) >= 5


def test_unknown_name_is_a_clear_key_error() -> None:
    with pytest.raises(KeyError, match="not in the otel_memory metric catalogue"):
        catalog.by_name("memory.nope")


def test_groups_partition_the_catalogue() -> None:
    grouped = [spec for group in catalog.Group for spec in catalog.in_group(group)]
    assert sorted(s.name for s in grouped) == sorted(s.name for s in catalog.ALL)
