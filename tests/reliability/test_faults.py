"""Failing probes and failing user code (short profile): one signal or one call lost, one log line."""

from __future__ import annotations

from pathlib import Path

from .faults import FAULTS, contained_user_code, failing_probes
from .profile import SHORT


def test_each_broken_file_or_probe_costs_one_signal_and_one_warning(tmp_path: Path) -> None:
    row = failing_probes(SHORT, tmp_path)
    assert row.failed() == [], (row.failed(), row.figures)
    faults = row.figures["faults"]
    assert set(faults) == set(FAULTS)
    for fault, (_breaker, lost, _source) in FAULTS.items():
        assert faults[fault]["warnings"] == 1, (fault, faults[fault])
        assert set(faults[fault]["missing"]) == lost, (fault, faults[fault])


def test_a_raising_listener_a_hanging_health_check_and_a_raising_sizer_are_contained(
        tmp_path: Path) -> None:
    row = contained_user_code(SHORT, tmp_path)
    assert row.failed() == [], (row.failed(), row.figures)
    assert row.figures["listener_lines"] == row.figures["hang_lines"] == row.figures["sizer_lines"] == 1
    assert row.figures["hang_other_borrows"] > 100
