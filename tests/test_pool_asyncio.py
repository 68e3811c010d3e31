"""AsyncObjectPool: async hooks, waiting, cancellation, timeouts, close, pressure, leaks."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.errors import PoolClosed, PoolExhausted, PoolTimeout
from otel_memory.pool import AsyncObjectPool, AsyncPooled
from otel_memory.pressure import MemoryPressure


class Conn:
    serial = 0

    def __init__(self) -> None:
        Conn.serial += 1
        self.serial = Conn.serial
        self.open = True
        self.resets = 0


def make_pool(meter_provider: MeterProvider, max_size: int = 2, **options: Any
              ) -> tuple[AsyncObjectPool[Conn], list[Conn]]:
    made: list[Conn] = []

    async def factory() -> Conn:
        await asyncio.sleep(0)
        conn = Conn()
        made.append(conn)
        return conn

    async def destroy(conn: Conn) -> None:
        await asyncio.sleep(0)
        conn.open = False

    options.setdefault("destroy", destroy)
    options.setdefault("timeout", 1.0)
    return AsyncObjectPool("conns", factory, max_size, meter_provider=meter_provider, **options), made


async def until(condition: Any, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def test_borrow_acquire_release_discard(meter_provider: MeterProvider) -> None:
    pool, made = make_pool(meter_provider)
    with pytest.raises(KeyError):
        async with pool.borrow() as conn:
            raise KeyError("boom")
    handle = await pool.acquire()
    assert isinstance(handle, AsyncPooled) and handle.get() is conn
    await handle.discard()
    assert not conn.open
    async with await pool.acquire() as handle:
        assert handle.get() is not conn
    stats = pool.stats()
    assert (stats.created, stats.borrows, stats.destroyed_by("discarded"), stats.idle) == (2, 3, 1, 1)
    assert len(made) == 2


async def test_async_health_check_and_reset(meter_provider: MeterProvider) -> None:
    async def check(conn: Conn) -> bool:
        await asyncio.sleep(0)
        return conn.open

    async def reset(conn: Conn) -> None:
        conn.resets += 1

    pool, _ = make_pool(meter_provider, health_check=check, reset=reset)
    async with pool.borrow() as conn:
        pass
    assert conn.resets == 1
    conn.open = False  # dies while idle (as a connection killed server-side)
    async with pool.borrow() as replacement:
        assert replacement is not conn
    assert pool.stats().destroyed_by("health_check") == 1


async def test_timeout_exhaustion_and_fifo(meter_provider: MeterProvider) -> None:
    pool, _ = make_pool(meter_provider, max_size=1, max_waiting=3)
    held = await pool.acquire()
    with pytest.raises(PoolTimeout, match="'conns'"):
        await pool.acquire(timeout=0.02)
    order: list[int] = []

    async def borrower(number: int) -> None:
        async with pool.borrow():
            order.append(number)
            await asyncio.sleep(0)

    tasks = []
    for number in range(3):
        tasks.append(asyncio.create_task(borrower(number)))
        await until(lambda n=number: pool.stats().pending_requests == n + 1)
    with pytest.raises(PoolExhausted):
        await pool.acquire()
    await held.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    stats = pool.stats()
    assert (stats.timeouts, stats.rejections, stats.borrows) == (1, 1, 4)


async def test_cancelled_waiters_never_lose_a_slot(meter_provider: MeterProvider) -> None:
    pool, _ = make_pool(meter_provider, max_size=1, timeout=None)
    held = await pool.acquire()
    first = asyncio.create_task(pool.acquire())
    second = asyncio.create_task(pool.acquire())
    await until(lambda: pool.stats().pending_requests == 2)
    # hand the object to the first waiter and cancel it before it runs: it must pass it on
    await held.release()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    handle = await asyncio.wait_for(second, 2.0)
    stats = pool.stats()
    assert (stats.borrowed, stats.borrows, stats.pending_requests) == (1, 2, 0)
    await handle.release()
    assert pool.stats().idle == 1


async def test_close_wakes_waiters_and_destroys(meter_provider: MeterProvider) -> None:
    pool, made = make_pool(meter_provider, max_size=1)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await until(lambda: pool.stats().pending_requests == 1)
    await pool.close()
    with pytest.raises(PoolClosed):
        await waiter
    await held.release()
    assert not made[0].open
    assert pool.stats().destroyed_by("closed") == 1
    with pytest.raises(PoolClosed):
        await pool.acquire()


async def test_factory_errors_reach_the_caller(meter_provider: MeterProvider) -> None:
    async def refuse() -> Conn:
        raise ConnectionRefusedError("no")

    pool: AsyncObjectPool[Conn] = AsyncObjectPool("refusing", refuse, 1, meter_provider=meter_provider)
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await pool.acquire()
    stats = pool.stats()
    assert (stats.create_errors, stats.size, stats.created) == (3, 0, 0)


async def test_pressure_from_another_thread_runs_on_the_loop(meter_provider: MeterProvider) -> None:
    pool, made = make_pool(meter_provider, max_size=3)
    handles = [await pool.acquire() for _ in range(3)]
    for handle in handles:
        await handle.release()
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(pool.respond_to_pressure(MemoryPressure.HIGH)))
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.005)
    assert answers == [True]
    await until(lambda: sum(not c.open for c in made) == 3)
    assert pool.stats().destroyed_by("pressure") == 3 and pool.stats().size == 0


async def test_leaked_handle_returns_through_the_loop(meter_provider: MeterProvider) -> None:
    pool, _ = make_pool(meter_provider, max_size=1)
    handle = await pool.acquire()
    del handle
    gc.collect()
    async with pool.borrow(timeout=2.0):
        pass
    assert pool.stats().leaked_borrows == 1


@pytest.mark.parametrize(("hook", "borrows", "destroyed"),
                         [("health_check", 2, 0), ("reset", 3, 1), ("check_on_return", 3, 1)])
async def test_cancelled_hook_loses_no_slot_and_keeps_counts_exact(
        meter_provider: MeterProvider, hook: str, borrows: int, destroyed: int) -> None:
    """On borrow the object goes back unborrowed; on return its state is unknown: destroyed."""
    armed = {"now": False}

    async def maybe_block(conn: Conn) -> bool:
        if armed["now"]:
            armed["now"] = False
            await asyncio.sleep(30)  # cancelled here
        return True

    options: dict[str, Any] = ({"health_check": maybe_block, "check_on_return": True}
                               if hook == "check_on_return" else {hook: maybe_block})
    pool, made = make_pool(meter_provider, max_size=1, **options)
    async with pool.borrow():
        pass
    handle = await pool.acquire() if hook != "health_check" else None
    armed["now"] = True
    task = asyncio.create_task(handle.release() if handle is not None else pool.acquire())
    await until(lambda: not armed["now"])
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: pool.stats().destroyed_total == destroyed)
    stats = pool.stats()
    assert (stats.borrowed, stats.size) == (0, 1 - destroyed)
    async with pool.borrow(timeout=0.5):  # the only slot is free again
        pass
    stats = pool.stats()
    assert (stats.borrows, stats.created, stats.destroyed_by("health_check")) == (
        borrows, 1 + destroyed, destroyed)
    assert len(made) == 1 + destroyed and made[0].open != bool(destroyed)


def test_stats_read_from_another_thread_while_the_loop_borrows_are_whole(
        meter_provider: MeterProvider) -> None:
    """The metric reader's thread reads while the lock-free asyncio hot path runs."""
    import sys

    pool: AsyncObjectPool[object] = AsyncObjectPool("torn", object, 4, meter_provider=meter_provider)
    stop = threading.Event()
    torn: list[Any] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            stats = pool.stats()
            reads[0] += 1
            if stats.size != stats.idle + stats.borrowed or stats.idle < 0:
                torn.append(stats)

    async def borrow_a_lot() -> None:
        async with pool.borrow():
            pass
        thread = threading.Thread(target=reader)
        thread.start()
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads between any two bytecodes, nearly
        try:
            for _ in range(50_000):
                async with pool.borrow():
                    pass
        finally:
            sys.setswitchinterval(interval)
            stop.set()
            thread.join()

    asyncio.run(borrow_a_lot())
    assert reads[0] > 100 and torn == []


def test_objects_made_on_an_event_loop_that_closed_are_not_lent_on_the_next() -> None:
    # A worker that runs asyncio.run() per job: a client's connections belong to the loop it
    # was made on, and fail on the next one ("Event loop is closed").
    destroyed: list[object] = []

    class Client:
        def __init__(self) -> None:
            self.loop = asyncio.get_running_loop()

    # A health check, as the HTTP, LLM and database client pools have: with none, a borrow
    # takes an idle object on the fast path without looking at the loop.
    pool: AsyncObjectPool[Client] = AsyncObjectPool(
        "clients", Client, 2, health_check=lambda client: True, destroy=destroyed.append,
        meter_provider=MeterProvider())

    async def job() -> Client:
        async with pool.borrow() as client:
            assert client.loop is asyncio.get_running_loop()
            return client

    first = asyncio.run(job())
    second = asyncio.run(job())
    assert second is not first and destroyed == [first]
    assert pool.stats().idle == 1
