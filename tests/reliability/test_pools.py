"""Pool stress (short profile): ObjectPool and AsyncObjectPool with everything going wrong."""

from __future__ import annotations

from .pools import MAX_SIZE, pool_stress_async, pool_stress_sync
from .profile import SHORT


def test_object_pool_lends_nothing_twice_loses_nothing_and_counts_right() -> None:
    row = pool_stress_sync(SHORT)
    assert row.failed() == [], (row.failed(), row.figures)
    assert row.figures["lent_twice"] == 0 and row.figures["lost"] == 0
    assert row.figures["held"]["memory.pool.borrowed"] == MAX_SIZE
    assert row.figures["borrows"] > SHORT.pool_threads * SHORT.pool_borrows_per_thread * 0.8


def test_asyncio_pool_survives_cancellation_of_waiting_and_borrowing_tasks() -> None:
    row = pool_stress_async(SHORT)
    assert row.failed() == [], (row.failed(), row.figures)
    assert row.figures["lent_twice"] == 0 and row.figures["lost"] == 0
    assert row.figures["cancelled"] > 0
