"""Exporter down (short profile): OTLP gRPC and HTTP to a closed port beside a baseline.

Throughput is printed, not asserted (timing is the benchmark's job: benchmarks/reliability.py);
RSS growth, the number of warnings and the time the end takes are asserted.
"""

from __future__ import annotations

import pytest

from .exporters import EXIT_LIMIT_S, RSS_GROWTH_LIMIT, exporter_down
from .profile import SHORT, Row

PLAIN_EXIT = "grpc: the end (exit)"


@pytest.fixture(scope="module")
def row() -> Row:
    row = exporter_down(SHORT)
    print(f"\n{row.result}")
    return row


def test_a_dead_collector_costs_bounded_memory_and_one_warning_per_exporter(row: Row) -> None:
    failed = [check for check in row.failed() if not check.startswith(PLAIN_EXIT)]
    assert failed == [], (failed, {mode: {k: v for k, v in pair.items() if k not in ("baseline", "down")}
                                   for mode, pair in row.figures.items()})
    for mode in ("grpc", "http"):
        pair = row.figures[mode]
        assert pair["rss_growth"] < RSS_GROWTH_LIMIT
        assert pair["passed"] and all(count == 1 for count in pair["passed"].values())
        assert sum(pair["attempted"].values()) > sum(pair["passed"].values())  # the limiter held some back
    assert row.figures["http"]["exit_s"] < EXIT_LIMIT_S   # shutdown_worker() waits 3 s at most


def test_a_plain_exit_is_not_held_by_the_dead_collector(row: Row) -> None:
    assert row.figures["grpc"]["exit_s"] < EXIT_LIMIT_S, row.figures["grpc"]["exit_s"]
