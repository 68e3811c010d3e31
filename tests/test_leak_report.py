"""LeakReport and LeakSuspect: frozen, JSON-safe, combined growth rate."""

from __future__ import annotations

import dataclasses
import json

import pytest

from otel_memory.leak.report import LeakReport, LeakSuspect, ProcessGrowth, SummaryRow


def suspect(name: str, rate: float) -> LeakSuspect:
    return LeakSuspect(name, count_delta=10, size_delta=1000, growth_bytes_per_s=rate, score=0.875,
                       snapshots=6, count=50, size=5000)


def test_the_report_is_json_with_only_names_numbers_and_sites() -> None:
    report = LeakReport(
        check_number=7, checked_at=1_700_000_000.123456, duration_s=0.0421, objects_scanned=120_000,
        heap_bytes=9_000_000, suspects=[suspect("app.A", 12.5).with_allocation_site("app/a.py:3"),
                                        suspect("app.B", -1.0)],
        new_suspects=("app.A",), process_growth=ProcessGrowth(2e8, 600.0, 100, 333.3, True),
        deep_summary=(SummaryRow("str", 10, 500),))
    data = json.loads(json.dumps(report.to_json_dict()))
    assert data["suspects"][0] == {
        "type_name": "app.A", "count_delta": 10, "size_delta": 1000, "growth_bytes_per_s": 12.5,
        "score": 0.875, "snapshots": 6, "count": 50, "size": 5000, "allocation_site": "app/a.py:3",
        "kind": "type", "holder": None, "item_type": None, "attribute": None}
    assert data["new_suspects"] == ["app.A"] and data["check_number"] == 7
    assert data["growth_bytes_per_s"] == 12.5            # a shrinking suspect adds nothing
    assert data["process_growth"]["alert"] is True and data["deep_summary"][0]["type_name"] == "str"

    def leaves(value: object) -> list[object]:
        if isinstance(value, dict):
            return [leaf for item in value.values() for leaf in leaves(item)]
        if isinstance(value, list):
            return [leaf for item in value for leaf in leaves(item)]
        return [value]

    assert all(isinstance(leaf, (str, int, float, bool, type(None))) for leaf in leaves(data))


def test_reports_and_suspects_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        suspect("app.A", 1.0).score = 0.1  # type: ignore[misc]
    empty = LeakReport(1, 0.0, 0.0, 0, 0, [])
    assert empty.to_json_dict()["process_growth"] is None and empty.growth_bytes_per_s == 0
