"""Cache stress (short profile): byte and entry accounting equal a recount, never over budget."""

from __future__ import annotations

from .caches import cache_stress
from .profile import SHORT


def test_smart_cache_accounting_equals_a_recount_under_eight_threads() -> None:
    row = cache_stress(SHORT)
    assert row.failed() == [], (row.failed(), row.figures)
    assert row.figures["max_over_budget"] <= 0 and row.figures["min_bytes"] >= 0
    assert row.figures["recount_mismatches"] == 0
    evictions = row.figures["evictions"]
    assert evictions["expired"] > 0 and evictions["memory"] > 0 and evictions["pressure"] > 0
    assert row.figures["refused"] > 0 and row.figures["loads"] > 0   # every path was taken
