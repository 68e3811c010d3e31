"""Pool stress: many borrowers on ObjectPool(max_size=4) and AsyncObjectPool with everything going wrong.

Borrowers raise inside the borrow block, discard objects, time out; health checks fail or
raise; the factory raises one time in ten; asyncio borrowers are cancelled while they wait and
while they hold an object. Each object carries an owner marker, so an object lent twice at once
is seen by whichever borrower comes second. At the end the pool must lend ``max_size`` objects
at once again (none lost), and its exported gauges and counters must equal what the borrowers
themselves counted.

Example::

    row = pool_stress_sync(SHORT)
    row.figures["lent_twice"], row.figures["borrows"]
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.errors import PoolTimeout
from otel_memory.pool import AsyncObjectPool, AsyncPooled, ObjectPool, Pooled, PoolStats
from tests.conftest import collect, points

from .profile import Profile, Row

MAX_SIZE = 4


class FactoryFailed(Exception):
    """The factory's planned failure (one call in ten)."""


class BorrowerFailed(Exception):
    """An exception raised by application code inside the borrow block."""


class Resource:
    """A pooled object with an owner marker: who holds it now (None while in the pool)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.owner: object = None
        self.broken = False


class Ledger:
    """What the borrowers saw, counted under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.holding: set[int] = set()
        self.live: set[int] = set()

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.seen[what] += n

    def lend(self, obj: Resource, owner: object) -> None:
        with self.lock:
            if obj.owner is not None or obj.number in self.holding:
                self.seen["lent_twice"] += 1
            if obj.number not in self.live:
                self.seen["lent_dead"] += 1   # destroyed, yet lent
            obj.owner = owner
            self.holding.add(obj.number)
            self.seen["borrows"] += 1

    def unlend(self, obj: Resource, owner: object) -> None:
        with self.lock:
            if obj.owner is not owner:
                self.seen["lent_twice"] += 1
            obj.owner = None
            self.holding.discard(obj.number)

    def created(self) -> Resource:
        with self.lock:
            self.seen["factory_calls"] += 1
            if random.random() < 0.1:
                self.seen["factory_failed"] += 1
                raise FactoryFailed("planned factory failure")
            self.seen["created"] += 1
            obj = Resource(self.seen["created"])
            self.live.add(obj.number)
            return obj

    def checked(self, obj: Resource) -> bool:
        with self.lock:
            if obj.owner is not None:
                self.seen["checked_while_lent"] += 1
            if obj.broken:
                self.seen["check_failed"] += 1
                return False
            if random.random() < 0.01:
                self.seen["check_raised"] += 1
                raise RuntimeError("planned health check failure")
            return True

    def destroyed(self, obj: Resource) -> None:
        with self.lock:
            self.seen["destroy_calls"] += 1
            if obj.owner is not None:
                self.seen["destroyed_while_lent"] += 1
            self.live.discard(obj.number)


def _provider() -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader


def _gauges(reader: InMemoryMetricReader, name: str) -> dict[str, Any]:
    got = collect(reader)
    result: dict[str, Any] = {}
    for spec in (catalog.MEMORY_POOL_SIZE, catalog.MEMORY_POOL_BORROWED, catalog.MEMORY_POOL_IDLE,
                 catalog.MEMORY_POOL_BORROWS, catalog.MEMORY_POOL_CREATED,
                 catalog.MEMORY_POOL_CREATE_ERRORS, catalog.MEMORY_POOL_TIMEOUTS):
        values = [v for v, a in points(got, spec.name) if a.get(catalog.ATTR_POOL_NAME) == name]
        result[spec.name] = values[0] if len(values) == 1 else values
    result["destroyed"] = {a[catalog.ATTR_POOL_DESTROY_REASON]: v
                           for v, a in points(got, catalog.MEMORY_POOL_DESTROYED.name)
                           if a.get(catalog.ATTR_POOL_NAME) == name}
    return result


def _reconcile(row: Row, ledger: Ledger, stats: PoolStats, held: dict[str, Any],
               after: dict[str, Any], idle: int) -> None:
    """The final checks shared by both pools; ``held`` is read while all max_size objects were
    lent at once, ``after`` once they were all given back."""
    seen = ledger.seen
    live = len(ledger.live)
    row.check("no object lent twice at once", seen["lent_twice"] == 0)
    row.check("no destroyed object lent", seen["lent_dead"] == 0)
    row.check("no object destroyed or checked while lent",
              seen["destroyed_while_lent"] == 0 and seen["checked_while_lent"] == 0)
    row.check("none lost: max_size lent at once again", held[catalog.MEMORY_POOL_BORROWED.name] == MAX_SIZE)
    row.check("gauges while all lent = recount (size 4, borrowed 4, idle 0)",
              (held[catalog.MEMORY_POOL_SIZE.name], held[catalog.MEMORY_POOL_BORROWED.name],
               held[catalog.MEMORY_POOL_IDLE.name]) == (MAX_SIZE, MAX_SIZE, 0))
    row.check("gauges after = recount (size = live objects = idle, borrowed 0)",
              (after[catalog.MEMORY_POOL_SIZE.name], after[catalog.MEMORY_POOL_BORROWED.name],
               after[catalog.MEMORY_POOL_IDLE.name]) == (live, 0, live) and idle == live)
    row.check("borrows counted = borrows seen", stats.borrows == seen["borrows"]
              and after[catalog.MEMORY_POOL_BORROWS.name] == seen["borrows"])
    row.check("created / create errors counted = factory calls seen",
              (stats.created, stats.create_errors) == (seen["created"], seen["factory_failed"])
              and after[catalog.MEMORY_POOL_CREATE_ERRORS.name] == seen["factory_failed"])
    row.check("timeouts counted = timeouts seen", stats.timeouts == seen["timeouts"]
              and after[catalog.MEMORY_POOL_TIMEOUTS.name] == seen["timeouts"])
    row.check("destroyed (health check, discarded, total) = recount",
              stats.destroyed_by("health_check") == seen["check_failed"] + seen["check_raised"]
              and stats.destroyed_by("discarded") == seen["discarded"]
              and stats.destroyed_total == seen["destroy_calls"] == seen["created"] - live
              and after["destroyed"] == dict(stats.destroyed))
    row.check("nothing pending", stats.pending_requests == 0 and stats.borrowed == 0)
    row.check("every kind of trouble happened (timeouts, factory errors, failed and raising checks, "
              "discards, exceptions in the block)",
              min(seen["timeouts"], seen["factory_failed"], seen["check_failed"], seen["check_raised"],
                  seen["discarded"], seen["raised"]) > 0)
    row.figures.update(
        borrows=seen["borrows"], lent_twice=seen["lent_twice"], timeouts=seen["timeouts"],
        factory_failed=seen["factory_failed"], check_failed=seen["check_failed"] + seen["check_raised"],
        discarded=seen["discarded"], raised=seen["raised"], cancelled=seen["cancelled"],
        lost=MAX_SIZE - held[catalog.MEMORY_POOL_BORROWED.name], held=held, after=after)
    row.result = (f"0 lent twice: {seen['lent_twice'] == 0}; lost {row.figures['lost']}; "
                  f"gauges = recount: {not row.failed()}; {seen['timeouts']:,} timeouts, "
                  f"{seen['factory_failed']:,} factory errors, {row.figures['check_failed']:,} failed "
                  f"checks, {seen['discarded']:,} discards, {seen['raised']:,} raised in the block"
                  + (f", {seen['cancelled']:,} cancelled" if seen["cancelled"] else ""))


def pool_stress_sync(profile: Profile) -> Row:
    """``profile.pool_threads`` threads borrowing from ObjectPool(max_size=4)."""
    total = profile.pool_threads * profile.pool_borrows_per_thread
    row = Row("Pool stress: ObjectPool(max_size=4)",
              f"{profile.pool_threads} threads x {profile.pool_borrows_per_thread:,} borrows")
    provider, reader = _provider()
    ledger = Ledger()
    pool: ObjectPool[Resource] = ObjectPool(
        "reliability.sync", ledger.created, MAX_SIZE, timeout=2.0, health_check=ledger.checked,
        destroy=ledger.destroyed, meter_provider=provider)
    failures: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        me = object()
        try:
            for _ in range(profile.pool_borrows_per_thread):
                roll = rng.random()
                try:
                    if roll < 0.05:
                        handle = pool.acquire(timeout=0.0002)
                        ledger.lend(handle.get(), me)
                        ledger.unlend(handle.get(), me)
                        handle.release()
                    elif roll < 0.08:
                        handle = pool.acquire()
                        ledger.lend(handle.get(), me)
                        ledger.unlend(handle.get(), me)
                        ledger.count("discarded")
                        handle.discard()
                    else:
                        with pool.borrow() as obj:
                            ledger.lend(obj, me)
                            try:
                                if roll < 0.11:
                                    obj.broken = True
                                if roll > 0.95:
                                    time.sleep(0.0001)  # hold it a while: the others wait, some time out
                                if roll > 0.97:
                                    raise BorrowerFailed("planned failure inside the block")
                            finally:
                                ledger.unlend(obj, me)
                except PoolTimeout:
                    ledger.count("timeouts")
                except FactoryFailed:
                    pass
                except BorrowerFailed:
                    ledger.count("raised")
        except BaseException as error:  # noqa: BLE001 - reported in the row
            failures.append(error)

    with row.timed():
        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(profile.pool_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        me = object()
        handles: list[Pooled[Resource]] = []
        while len(handles) < MAX_SIZE:
            try:
                handle = pool.acquire(timeout=5.0)
            except FactoryFailed:
                continue
            ledger.lend(handle.get(), me)
            handles.append(handle)
        held = _gauges(reader, "reliability.sync")
        for handle in handles:
            ledger.unlend(handle.get(), me)
            handle.release()
        after = _gauges(reader, "reliability.sync")
        stats = pool.stats()
        idle = len(pool.core.idle)
    row.check("no borrower thread failed", failures == [])
    row.figures["failures"] = [repr(error) for error in failures]
    _reconcile(row, ledger, stats, held, after, idle)
    row.count = f"{row.count} ({ledger.seen['borrows']:,} of {total:,} lent)"
    provider.shutdown()
    return row


def pool_stress_async(profile: Profile) -> Row:
    """``profile.async_tasks`` tasks borrowing from AsyncObjectPool(max_size=4), with random
    cancellation of tasks that wait and of tasks that hold an object."""
    total = profile.async_tasks * profile.async_borrows_per_task
    row = Row("Pool stress: AsyncObjectPool(max_size=4)",
              f"{profile.async_tasks} tasks x {profile.async_borrows_per_task:,} borrows")
    provider, reader = _provider()
    ledger = Ledger()
    failures: list[BaseException] = []

    async def factory() -> Resource:
        await asyncio.sleep(0)
        return ledger.created()

    async def health_check(obj: Resource) -> bool:
        if random.random() < 0.2:
            await asyncio.sleep(0)
        return ledger.checked(obj)

    async def destroy(obj: Resource) -> None:
        await asyncio.sleep(0)
        ledger.destroyed(obj)

    async def main() -> tuple[PoolStats, dict[str, Any], dict[str, Any], int]:
        pool: AsyncObjectPool[Resource] = AsyncObjectPool(
            "reliability.async", factory, MAX_SIZE, timeout=2.0, health_check=health_check,
            destroy=destroy, meter_provider=provider)

        async def one(roll: float, rng: random.Random) -> None:
            me = object()
            try:
                if roll < 0.05:
                    handle = await pool.acquire(timeout=0.0002)
                    ledger.lend(handle.get(), me)
                    ledger.unlend(handle.get(), me)
                    await handle.release()
                elif roll < 0.08:
                    handle = await pool.acquire()
                    ledger.lend(handle.get(), me)
                    ledger.unlend(handle.get(), me)
                    ledger.count("discarded")
                    await handle.discard()
                else:
                    async with pool.borrow() as obj:
                        ledger.lend(obj, me)
                        try:
                            if roll < 0.11:
                                obj.broken = True
                            for _ in range(rng.randrange(3)):
                                await asyncio.sleep(0)
                            if roll > 0.97:
                                raise BorrowerFailed("planned failure inside the block")
                        finally:
                            ledger.unlend(obj, me)
            except PoolTimeout:
                ledger.count("timeouts")
            except FactoryFailed:
                pass
            except BorrowerFailed:
                ledger.count("raised")

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(profile.async_borrows_per_task):
                    roll = rng.random()
                    if rng.random() < 0.04:   # cancel it at a random point: waiting or holding
                        task = asyncio.ensure_future(one(roll, rng))
                        for _ in range(rng.randrange(4)):
                            await asyncio.sleep(0)
                        task.cancel()
                        try:
                            await task
                        except asyncio.CancelledError:
                            ledger.count("cancelled")
                    else:
                        await one(roll, rng)
            except BaseException as error:  # noqa: BLE001 - reported in the row
                failures.append(error)

        await asyncio.gather(*(worker(seed) for seed in range(profile.async_tasks)))
        # destroys shielded from cancelled borrowers finish on their own: wait for them
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        await asyncio.gather(*others, return_exceptions=True)
        me = object()
        handles: list[AsyncPooled[Resource]] = []
        while len(handles) < MAX_SIZE:
            try:
                handle = await pool.acquire(timeout=5.0)
            except FactoryFailed:
                continue
            ledger.lend(handle.get(), me)
            handles.append(handle)
        held = _gauges(reader, "reliability.async")
        for handle in handles:
            ledger.unlend(handle.get(), me)
            await handle.release()
        after = _gauges(reader, "reliability.async")
        return pool.stats(), held, after, len(pool.core.idle)

    with row.timed():
        stats, held, after, idle = asyncio.run(main())
    row.check("no borrower task failed", failures == [])
    row.check("some borrowers were cancelled", ledger.seen["cancelled"] > 0)
    row.figures["failures"] = [repr(error) for error in failures]
    _reconcile(row, ledger, stats, held, after, idle)
    row.count = f"{row.count} ({ledger.seen['borrows']:,} of {total:,} lent)"
    provider.shutdown()
    return row
