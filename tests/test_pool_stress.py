"""Stress: 100k borrows from 16 threads (and from asyncio tasks with cancellations) with random
exceptions, health-check failures and discards. No object is ever lent twice at once, none is
lost, and the exported counts reconcile exactly with what the test saw happen."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.errors import PoolTimeout
from otel_memory.pool import AsyncObjectPool, ObjectPool, PoolStats
from tests.conftest import collect, points

THREADS = 16
BORROWS = 100_000
MAX_SIZE = 8


class Obj:
    def __init__(self, number: int) -> None:
        self.number = number
        self.broken = False


class Ledger:
    """What the test saw, counted under its own lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lent: set[int] = set()
        self.seen = Counter[str]()
        self.double_lends = 0

    def count(self, what: str) -> None:
        with self.lock:
            self.seen[what] += 1

    def lend(self, obj: Obj) -> None:
        with self.lock:
            if obj.number in self.lent:
                self.double_lends += 1
            self.lent.add(obj.number)
            self.seen["borrows"] += 1

    def unlend(self, obj: Obj) -> None:
        with self.lock:
            self.lent.discard(obj.number)


def hooks(ledger: Ledger) -> dict[str, Any]:
    def factory() -> Obj:
        with ledger.lock:
            ledger.seen["created"] += 1
            return Obj(ledger.seen["created"])

    def health_check(obj: Obj) -> bool:
        if obj.broken:
            ledger.count("health_check")
            return False
        return True

    def destroy(obj: Obj) -> None:
        ledger.count("destroy_calls")

    return {"factory": factory, "health_check": health_check, "destroy": destroy}


def reconcile(stats: PoolStats, ledger: Ledger, reader: InMemoryMetricReader, name: str) -> None:
    seen = ledger.seen
    assert ledger.double_lends == 0
    assert ledger.lent == set()
    assert stats.borrowed == 0 and stats.pending_requests == 0
    assert stats.borrows == seen["borrows"]
    assert stats.created == seen["created"]
    assert stats.timeouts == seen["timeouts"]
    assert stats.destroyed_by("health_check") == seen["health_check"]
    assert stats.destroyed_by("discarded") == seen["discarded"]
    assert stats.destroyed_total == seen["destroy_calls"]
    assert stats.size == stats.idle == stats.created - stats.destroyed_total
    assert stats.size <= MAX_SIZE
    got = collect(reader)
    exported = {spec: [v for v, a in points(got, spec.name) if a[catalog.ATTR_POOL_NAME] == name]
                for spec in (catalog.MEMORY_POOL_BORROWS, catalog.MEMORY_POOL_CREATED,
                             catalog.MEMORY_POOL_TIMEOUTS, catalog.MEMORY_POOL_SIZE,
                             catalog.MEMORY_POOL_BORROWED)}
    assert exported == {catalog.MEMORY_POOL_BORROWS: [stats.borrows],
                        catalog.MEMORY_POOL_CREATED: [stats.created],
                        catalog.MEMORY_POOL_TIMEOUTS: [stats.timeouts],
                        catalog.MEMORY_POOL_SIZE: [stats.size],
                        catalog.MEMORY_POOL_BORROWED: [0]}
    destroyed = {a[catalog.ATTR_POOL_DESTROY_REASON]: v
                 for v, a in points(got, catalog.MEMORY_POOL_DESTROYED.name)
                 if a[catalog.ATTR_POOL_NAME] == name}
    assert destroyed == dict(stats.destroyed)


def test_sixteen_threads_hundred_thousand_borrows(meter_provider: MeterProvider,
                                                  reader: InMemoryMetricReader) -> None:
    ledger = Ledger()
    hook = hooks(ledger)
    pool = ObjectPool("stress", hook["factory"], MAX_SIZE, meter_provider=meter_provider,
                      timeout=None, health_check=hook["health_check"], destroy=hook["destroy"])
    per_thread = BORROWS // THREADS
    failures: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(per_thread):
                roll = rng.random()
                if roll < 0.01:
                    try:
                        handle = pool.acquire(timeout=0.0)
                    except PoolTimeout:
                        ledger.count("timeouts")
                        continue
                    ledger.lend(handle.get())
                    ledger.unlend(handle.get())
                    handle.release()
                elif roll < 0.04:
                    handle = pool.acquire()
                    ledger.lend(handle.get())
                    ledger.unlend(handle.get())
                    ledger.count("discarded")
                    handle.discard()
                else:
                    with contextlib.suppress(ValueError), pool.borrow() as obj:
                        ledger.lend(obj)
                        try:
                            if roll < 0.06:
                                obj.broken = True
                            if roll > 0.9:
                                time.sleep(0)  # let other threads in while holding: they wait
                            if roll > 0.98:
                                raise ValueError("the borrower failed")
                        finally:
                            ledger.unlend(obj)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    # a broken object may still sit idle: borrowing everything flushes and proves none is lost
    handles = [pool.acquire(timeout=1.0) for _ in range(MAX_SIZE)]
    for handle in handles:
        ledger.lend(handle.get())
    for handle in handles:
        ledger.unlend(handle.get())
        handle.release()
    assert ledger.seen["borrows"] == BORROWS - ledger.seen["timeouts"] + MAX_SIZE
    assert ledger.seen["health_check"] > 0 and ledger.seen["discarded"] > 0
    reconcile(pool.stats(), ledger, reader, "stress")
    waits = [p.count for p in collect(reader)[catalog.MEMORY_POOL_WAIT_TIME.name].data.data_points
             if p.attributes[catalog.ATTR_POOL_NAME] == "stress"]
    assert waits and waits[0] > 0  # the threads really contended


def test_asyncio_tasks_with_cancellations(meter_provider: MeterProvider,
                                          reader: InMemoryMetricReader) -> None:
    ledger = Ledger()
    hook = hooks(ledger)
    tasks_n = 32
    per_task = BORROWS // tasks_n

    async def main() -> AsyncObjectPool[Obj]:
        pool: AsyncObjectPool[Obj] = AsyncObjectPool(
            "astress", hook["factory"], MAX_SIZE, meter_provider=meter_provider, timeout=None,
            health_check=hook["health_check"], destroy=hook["destroy"])

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(per_task):
                roll = rng.random()
                if roll < 0.03:  # start a borrow and cancel it at a random point
                    attempt = asyncio.ensure_future(pool.acquire())
                    for _ in range(rng.randrange(3)):
                        await asyncio.sleep(0)
                    attempt.cancel()
                    try:
                        handle = await attempt
                    except asyncio.CancelledError:
                        ledger.count("cancelled")
                        continue
                    ledger.lend(handle.get())
                    ledger.unlend(handle.get())
                    await handle.release()
                elif roll < 0.05:
                    handle = await pool.acquire()
                    ledger.lend(handle.get())
                    ledger.unlend(handle.get())
                    ledger.count("discarded")
                    await handle.discard()
                else:
                    with contextlib.suppress(ValueError):
                        async with pool.borrow() as obj:
                            ledger.lend(obj)
                            try:
                                if rng.random() < 0.5:
                                    await asyncio.sleep(0)
                                if roll < 0.07:
                                    obj.broken = True
                                if roll > 0.98:
                                    raise ValueError("the borrower failed")
                            finally:
                                ledger.unlend(obj)

        await asyncio.gather(*(worker(seed) for seed in range(tasks_n)))
        handles = [await pool.acquire(timeout=1.0) for _ in range(MAX_SIZE)]
        for handle in handles:
            ledger.lend(handle.get())
        for handle in handles:
            ledger.unlend(handle.get())
            await handle.release()
        return pool

    pool = asyncio.run(main())
    assert ledger.seen["cancelled"] > 0 and ledger.seen["health_check"] > 0
    reconcile(pool.stats(), ledger, reader, "astress")
