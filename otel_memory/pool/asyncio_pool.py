"""AsyncObjectPool: the asyncio pool, with the same core and semantics as ObjectPool.

Factory, health check, reset and destroy may be plain functions or coroutine functions.
Waiters park on a future each, served first-come first-served; a cancelled waiter passes on
whatever it had already been handed, so cancellation never loses a slot. The slow paths are
the protocols of ``_flow``, shared with ObjectPool; this module only awaits their steps.

Example::

    pool = AsyncObjectPool("clients", make_client, 10, destroy=lambda c: c.aclose())
    async with pool.borrow() as client:
        await client.get("/health")
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, overload

from ..pressure import MemoryPressure
from . import _housekeeping as housekeeping
from ._base import PoolBase
from ._core import REASON_CLOSED, REASON_DISCARDED, Entry, T, Waiter
from ._flow import (
    CHECK,
    CREATE,
    RESET,
    WAIT,
    acquire,
    destroy_lent,
    give_back,
    give_back_reclaimed,
    refill,
    run_async,
)
from .handle import AsyncBorrow, AsyncPooled

__all__ = ["AsyncObjectPool"]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _TaskWaiter(Waiter[T]):
    __slots__ = ("future", "loop", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.thread = threading.get_ident()

    def wake(self) -> None:
        if threading.get_ident() == self.thread:
            _resolve(self.future)
        else:
            with contextlib.suppress(RuntimeError):  # a closed loop has nobody left to wake
                self.loop.call_soon_threadsafe(_resolve, self.future)


async def _maybe_await(result: Any) -> Any:
    if inspect.isawaitable(result):
        return await result
    return result


class AsyncObjectPool(PoolBase[T]):
    """An asyncio pool of expensive objects that exports its own metrics.

    Same options and semantics as ObjectPool; hooks may be coroutine functions. Use it from
    one event loop: the loop serialises every change of state, so the borrow path takes no
    lock; pressure release and housekeeping from other threads are passed to the loop, and
    metrics read plain integers.

    Example::

        pool = AsyncObjectPool("llm", make_client, 4, health_check=is_open, timeout=5.0)
        async with pool.borrow() as client:
            await client.generate("hello")
        handle = await pool.acquire()
        await handle.release()
        await pool.close()
    """

    @overload
    def __init__(self, name: str, factory: Callable[[], Awaitable[T]], max_size: int,
                 **options: Any) -> None: ...

    @overload
    def __init__(self, name: str, factory: Callable[[], T], max_size: int, **options: Any) -> None: ...

    def __init__(self, name: str, factory: Callable[[], Any], max_size: int, **options: Any) -> None:
        """Options as ObjectPool; factory and hooks may be coroutine functions."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        super().__init__(name, factory, max_size, **options)

    # --- everything that changes state runs on the loop ------------------------------------

    def _off_loop(self) -> asyncio.AbstractEventLoop | None:
        """The pool's loop when called from another thread while it runs, else None."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return None
        try:
            if asyncio.get_running_loop() is loop:
                return None
        except RuntimeError:
            pass
        return loop

    def respond_to_pressure(self, level: MemoryPressure) -> bool:
        """At HIGH and CRITICAL, destroy idle objects above min_idle (on the pool's loop)."""
        loop = self._off_loop()
        if loop is None:
            return super().respond_to_pressure(level)
        if level < MemoryPressure.HIGH or len(self.core.idle) <= self.options.min_idle:
            return False
        try:
            loop.call_soon_threadsafe(super().respond_to_pressure, level)
        except RuntimeError:
            return super().respond_to_pressure(level)
        return True

    def _housekeep(self) -> None:
        self._watch_hooks()   # here, not on the loop: a hook that hangs may be blocking the loop
        loop = self._off_loop()
        if loop is None:
            super()._housekeep()
            return
        try:
            loop.call_soon_threadsafe(super()._housekeep)
        except RuntimeError:
            super()._housekeep()

    def _after_fork_extra(self) -> None:
        self._loop = None
        self._tasks = set()

    # --- borrowing ---------------------------------------------------------------------------

    def borrow(self, timeout: float | None = None) -> AsyncBorrow[T]:
        """``async with pool.borrow() as obj:`` lends an object for the block."""
        return AsyncBorrow(self, timeout)

    async def acquire(self, timeout: float | None = None) -> AsyncPooled[T]:
        """An AsyncPooled handle; raises PoolTimeout, PoolExhausted or PoolClosed."""
        return AsyncPooled(self, await self.lend_entry(timeout))

    async def lend_entry(self, timeout: float | None) -> Entry[T]:
        loop = self._loop
        if loop is None or loop.is_closed():
            if loop is not None:
                self._drop_idle_of_closed_loop()
            loop = self._loop = asyncio.get_running_loop()
        if self.core.reclaimed:
            await self._process_reclaimed_async()
        return await run_async(acquire(self, timeout, lambda: _TaskWaiter(loop)), self._carry_out)

    def _drop_idle_of_closed_loop(self) -> None:
        """The idle objects were made on an event loop that has closed (a worker that runs
        ``asyncio.run()`` per job): an HTTP client's connections belong to it and would fail
        on the next loop ("Event loop is closed"). They are destroyed, not lent. (A pool
        without a health check lends idle objects on its fast path without this look: the
        client pools all have one.)"""
        with self.core.lock:
            stale = self.core.release_idle_locked(0, REASON_CLOSED)
        for entry in stale:
            self._destroy_without_loop(entry.obj)

    async def _carry_out(self, step: str, argument: Any) -> Any:
        """One step of a protocol in ``_flow``: await the hook, or the waiter's future."""
        if step == WAIT:
            waiter, deadline = argument
            if deadline is None:
                await waiter.future
            else:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(waiter.future, remaining)
            return None
        if step == CREATE:
            return await _maybe_await(self._factory())
        if step == CHECK:
            return await _maybe_await(self._health_check(argument.obj))  # type: ignore[misc]
        if step == RESET:
            return await _maybe_await(self._reset(argument.obj))  # type: ignore[misc]
        if self._destroy is not None:  # DESTROY: finishes even when the borrower is cancelled
            await asyncio.shield(self._destroy_all(argument))
        return None

    # --- giving back -------------------------------------------------------------------------

    async def take_back(self, entry: Entry[T]) -> None:
        await run_async(give_back(self, entry), self._carry_out)

    async def discard_entry(self, entry: Entry[T]) -> None:
        await run_async(destroy_lent(self.core, entry, REASON_DISCARDED), self._carry_out)

    def reclaim_entry(self, entry: Entry[T]) -> None:
        # From AsyncPooled.__del__: never lock; queue and ask the loop to process it.
        self.core.reclaimed.append(entry)
        loop = self._loop
        try:
            if loop is None:
                raise RuntimeError("no loop")
            loop.call_soon_threadsafe(self._spawn, self._process_reclaimed_async)
        except RuntimeError:
            housekeeping.poke(self)

    async def _process_reclaimed_async(self) -> None:
        await run_async(give_back_reclaimed(self), self._carry_out)

    def _process_reclaimed(self) -> None:
        # Housekeeping thread: hand the work to the loop, or, with the loop gone, drop the slots.
        if self._on_loop(self._process_reclaimed_async):
            return
        reclaimed = self.core.reclaimed
        while reclaimed:
            entry = reclaimed.popleft()
            if entry.generation != self.core.generation:
                self.core.orphan(entry)
                continue
            self._count_leak(entry)
            with self.core.lock:
                self.core.destroy_borrowed_locked(entry, REASON_DISCARDED)
            self._destroy_without_loop(entry.obj)

    # --- destruction, close, refill ----------------------------------------------------------

    def _spawn(self, make: Callable[[], Awaitable[Any]]) -> None:
        task = asyncio.ensure_future(make())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_loop(self, make: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``make()`` as a task on the pool's loop from any thread; False without a loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(self._spawn, make)
        except RuntimeError:
            return False
        return True

    async def destroy_object(self, obj: T) -> None:
        if self._destroy is None:
            return
        try:
            await _maybe_await(self._destroy(obj))
        except Exception as error:  # noqa: BLE001 - destroying must not break the caller
            self._warn_once("destroy", "otel_memory: pool %r: destroy raised %s (logged once)",
                            self.name, type(error).__name__)

    def _destroy_without_loop(self, obj: T) -> None:
        if self._destroy is None:
            return
        try:
            result = self._destroy(obj)
        except Exception as error:  # noqa: BLE001
            self._warn_once("destroy", "otel_memory: pool %r: destroy raised %s (logged once)",
                            self.name, type(error).__name__)
            return
        if inspect.iscoroutine(result):
            result.close()
            self._warn_once("destroy-loop", "otel_memory: pool %r: its event loop is closed; "
                            "async destroy skipped", self.name)

    async def _destroy_all(self, objects: list[T]) -> None:
        for obj in objects:
            await self.destroy_object(obj)

    def _destroy_entries(self, entries: list[Entry[T]]) -> None:
        if self._destroy is None or not entries:
            return
        if self._on_loop(lambda: self._destroy_all([entry.obj for entry in entries])):
            return
        for entry in entries:
            self._destroy_without_loop(entry.obj)

    def _refill(self) -> None:
        self._on_loop(self._refill_async)

    async def _refill_async(self) -> None:
        await run_async(refill(self), self._carry_out)

    async def close(self) -> None:
        """Refuse new borrows, wake waiters with PoolClosed and destroy idle objects."""
        with self.core.lock:
            drained = self.core.close_locked()
        await self._destroy_all([entry.obj for entry in drained])

    async def __aenter__(self) -> AsyncObjectPool[T]:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
