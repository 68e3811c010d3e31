"""Profiles (how hard each case pushes) and the rows the cases report.

The pytest suite runs ``SHORT`` (each case bounded, the whole under three minutes on two cores);
``benchmarks/reliability.py`` runs ``LONG`` and prints every row as one table.

Example::

    row = pool_stress_sync(SHORT)
    assert row.failed() == [], row.failed()
    print(format_table([row]))
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    """Counts and durations of every case.

    Example::

        Profile("tiny", pool_borrows_per_thread=100, cache_seconds=0.5, exporter_seconds=2.0)
    """

    name: str
    pool_threads: int = 16
    pool_borrows_per_thread: int = 2_500
    async_tasks: int = 16
    async_borrows_per_task: int = 2_500
    cache_threads: int = 8
    cache_seconds: float = 3.0
    exporter_seconds: float = 6.0
    forks: int = 20
    examples: int = 400
    leak_checks: int = 12
    check_throughput: bool = False
    """Hold the exporter-down throughput to within 2% of no export (only over long runs: a few
    seconds on a shared machine are noise)."""


SHORT = Profile("short")
LONG = Profile("long", pool_borrows_per_thread=100_000, async_borrows_per_task=100_000,
               cache_seconds=20.0, exporter_seconds=60.0, examples=5_000, check_throughput=True)


@dataclass
class Row:
    """One line of the table: what a case did, how long it took, what it found.

    ``checks`` are the promises the case verified, each with its outcome; ``figures`` the
    numbers behind them (the tests assert on both).

    Example::

        row = Row("Cache stress", "8 threads, 20 s")
        row.check("bytes equal a recount", cache.usage_bytes == recount)
    """

    case: str
    count: str = ""
    seconds: float = 0.0
    result: str = ""
    checks: list[tuple[str, bool]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, promise: str, kept: bool) -> bool:
        """Record whether ``promise`` was kept; returns ``kept``."""
        self.checks.append((promise, bool(kept)))
        return bool(kept)

    def failed(self) -> list[str]:
        """The promises that were broken."""
        return [promise for promise, kept in self.checks if not kept]

    @property
    def verdict(self) -> str:
        """"ok" when every check held, else "FAILED: ..." naming the broken promises."""
        broken = self.failed()
        return "ok" if not broken else "FAILED: " + "; ".join(broken)

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Add the time spent in the block to ``seconds``."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - began


def format_table(rows: list[Row]) -> str:
    """The rows as a Markdown table: case, count, time, result."""
    lines = ["| Case | Count | Time | Result |", "| --- | --- | --- | --- |"]
    for row in rows:
        result = row.result if row.verdict == "ok" else f"{row.result} **{row.verdict}**"
        lines.append(f"| {row.case} | {row.count} | {row.seconds:.1f} s | {result} |")
    return "\n".join(lines)
