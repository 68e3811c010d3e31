"""Bad input (short profile): hypothesis over every MEMORY_* variable and every constructor."""

from __future__ import annotations

import pytest

from .bad_input import bad_input
from .profile import SHORT, Row

LEAK_DETECTOR = "leak detector"


@pytest.fixture(scope="module")
def row() -> Row:
    return bad_input(SHORT)


def test_every_refusal_names_the_variable_or_argument_and_what_is_expected(row: Row) -> None:
    failed = [check for check in row.failed() if not check.startswith(LEAK_DETECTOR)]
    assert failed == [], {name: figures for name, figures in row.figures.items()
                          if isinstance(figures, dict) and figures.get("violations")}
    figures = row.figures
    assert figures["refusals"] > SHORT.examples
    assert figures["MEMORY_* variables"]["counts"]["accepted"] > 0   # not everything is refused


def test_a_misspelt_variable_gets_one_warning_suggesting_the_right_name(row: Row) -> None:
    counts = row.figures["misspelt variables"]["counts"]
    assert counts["warned"] > 0 and counts.get("violations", 0) == 0
    assert counts["warned_right_name"] > 0.8 * counts["warned"]


def test_the_leak_detector_refuses_what_it_cannot_use(row: Row) -> None:
    figures = row.figures[LEAK_DETECTOR]
    assert figures["counts"].get("violations", 0) == 0, figures["violations"]
