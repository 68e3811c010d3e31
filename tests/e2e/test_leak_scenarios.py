"""Seeded leaks are found and steady workloads never alarm, each in its own process.

The scenarios live in tests/e2e/leak_scenarios.py (run ``python -m tests.e2e.leak_scenarios
--all`` for the table of recall, false alarms and checks-to-detection).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from otel_memory.leak import RankingPolicy

from .leak_scenarios import CHECKS, KIND_CHECKS, SCENARIOS, run_in_subprocess, summarize

LEAKS = [name for name, scenario in SCENARIOS.items() if scenario.expected]
STEADY = [name for name, scenario in SCENARIOS.items() if not scenario.expected]
WARMUP = RankingPolicy().warmup_checks
WARMUP_AND_GROWTH_CHECKS = WARMUP + RankingPolicy().min_growth_checks


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, object]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(SCENARIOS, pool.map(run_in_subprocess, SCENARIOS), strict=True))
    print("\n" + summarize(list(done.values())))
    return done


def test_there_are_leaks_and_steady_workloads_of_every_kind_the_issue_names() -> None:
    assert set(LEAKS) >= {"list_of_objects", "dict_of_objects", "unbounded_memo",
                          "callbacks_never_removed", "reference_cycles", "untracked_small_dicts",
                          "strings", "slow_leak_in_churn"}
    assert set(STEADY) >= {"steady_bounded_cache", "steady_batches", "steady_oscillating_queue",
                           "steady_one_time_import"}


@pytest.mark.parametrize("name", LEAKS)
def test_a_seeded_leak_becomes_a_suspect_soon_after_the_warm_up(
        results: dict[str, dict[str, object]], name: str) -> None:
    result = results[name]
    scenario = SCENARIOS[name]
    assert result["detected_at"] is not None, result["suspects_by_check"]
    if scenario.checks == CHECKS:     # a plain leak: by the peak rule, as soon as it can
        assert int(str(result["detected_at"])) <= WARMUP_AND_GROWTH_CHECKS + 1
    elif scenario.checks == KIND_CHECKS:     # containers, native, floors: within 24 checks
        assert int(str(result["detected_at"])) <= KIND_CHECKS
    else:        # hidden in churn: by the rising-floor test, within a window and a third
        window = scenario.policy.window_checks
        assert int(str(result["detected_at"])) <= WARMUP + window + window // 3
    by_check = result["suspects_by_check"]
    assert isinstance(by_check, list) and len(by_check) == scenario.checks
    # never during the warm-up, and still a suspect at the last check (the leak goes on)
    assert all(not names for names in by_check[:WARMUP])
    assert set(by_check[-1]) & set(result["expected"])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", STEADY)
def test_a_steady_workload_never_has_a_suspect(results: dict[str, dict[str, object]],
                                               name: str) -> None:
    assert results[name]["suspects"] == [], results[name]["suspects_by_check"]


def found(results: dict[str, dict[str, object]], scenario: str, label: str) -> dict[str, object]:
    first = results[scenario]["first_found"]
    assert isinstance(first, dict) and label in first, first
    suspect = first[label]
    assert isinstance(suspect, dict)
    return suspect


def test_a_growing_container_is_named_by_the_attribute_that_holds_it_and_its_items(
        results: dict[str, dict[str, object]]) -> None:
    registry = found(results, "set_held_by_a_class_attribute", "container:set")
    assert str(registry["attribute"]).endswith(":Registry.seen") and registry["item_type"] == "int"
    assert registry["kind"] == "container" and int(str(registry["count_delta"])) >= 1000
    blobs = found(results, "bytes_held_by_one_dict", "container:dict")
    assert str(blobs["attribute"]).endswith(":_BLOBS") and blobs["item_type"] == "bytes"


def test_untracked_items_name_the_container_type_that_holds_them(
        results: dict[str, dict[str, object]]) -> None:
    blobs = found(results, "bytes_held_by_one_dict", "bytes")
    assert blobs["kind"] == "type" and blobs["holder"] == "dict"


def test_native_memory_growth_is_a_native_suspect_and_nothing_else(
        results: dict[str, dict[str, object]]) -> None:
    native = found(results, "native_malloc", "native:native")
    assert int(str(native["size_delta"])) >= 8 * 1024 * 1024
    assert float(str(native["growth_bytes_per_s"])) > 0
    assert results["native_malloc"]["unexpected"] == []    # the Python heap is not blamed
    reading = results["native_malloc"]["native"]
    assert isinstance(reading, dict) and int(str(reading["native_bytes"])) > 24 * 3 * 1024 * 1024


def test_memory_malloc_keeps_for_reuse_is_not_called_a_native_leak(
        results: dict[str, dict[str, object]]) -> None:
    reading = results["steady_memory_retained_by_malloc"]["native"]
    assert isinstance(reading, dict) and reading["retained_bytes"] is not None
    assert results["steady_memory_retained_by_malloc"]["suspects"] == []


def test_a_floor_rising_under_churn_is_found_without_any_growing_container(
        results: dict[str, dict[str, object]]) -> None:
    floor = [label for label in results["floor_under_churn"]["suspects"]  # type: ignore[attr-defined]
             if label.startswith("floor:")]
    assert floor and all(not str(label).startswith("container:")
                         for label in results["floor_under_churn"]["suspects"])  # type: ignore[attr-defined]
