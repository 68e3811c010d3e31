"""AsyncObjectPool: the asyncio pool, with the same core and semantics as ObjectPool.

Factory, health check, reset and destroy may be plain functions or coroutine functions.
Waiters park on a future each, served first-come first-served; a cancelled waiter passes on
whatever it had already been handed, so cancellation never loses a slot.

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

from ..errors import PoolTimeout
from ..pressure import MemoryPressure
from . import _housekeeping as housekeeping
from ._base import PoolBase, _log
from ._core import CREATE, REASON_DISCARDED, REASON_HEALTH_CHECK, Entry, T, Waiter, _Create
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
        if level < MemoryPressure.HIGH or len(self._core.idle) <= self.options.min_idle:
            return False
        try:
            loop.call_soon_threadsafe(super().respond_to_pressure, level)
        except RuntimeError:
            return super().respond_to_pressure(level)
        return True

    def _housekeep(self) -> None:
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
        return AsyncPooled(self, await self._acquire_entry(timeout))

    async def _acquire_entry(self, timeout: float | None) -> Entry[T]:
        core = self._core
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        if core.reclaimed:
            await self._process_reclaimed_async()
        start = time.perf_counter() if self._time_borrows else 0.0
        if timeout is None:
            timeout = self.options.timeout
        waited_since = 0.0
        deadline: float | None = None
        while True:
            retired: list[Entry[T]] = []
            with core.lock:
                got = core.take_locked(lambda: _TaskWaiter(loop), retired)
            if retired:
                await self._destroy_all(retired)
            if isinstance(got, _TaskWaiter):
                if not waited_since:
                    waited_since = time.perf_counter()
                    deadline = None if timeout is None else time.monotonic() + timeout
                got = await self._wait(got, deadline, timeout)
            if got is CREATE:
                entry = await self._create()
                break
            assert isinstance(got, Entry)
            if self._health_check is None or await self._healthy(got):
                entry = got
                break
            await self._destroy_lent(got, REASON_HEALTH_CHECK, unlend=True)
        if waited_since:
            self._recorder.record_wait(time.perf_counter() - waited_since)
        if self._time_borrows:
            self._recorder.record_db_wait(time.perf_counter() - start)
        if core.tracks_leaks:
            core.note_borrower(entry)
        return entry

    async def _wait(self, waiter: _TaskWaiter[T], deadline: float | None,
                    timeout: float | None) -> Entry[T] | _Create:
        core = self._core
        try:
            if deadline is None:
                await waiter.future
            else:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(waiter.future, remaining)
            with core.lock:
                got = core.resolve_wait_locked(waiter, timed_out=True)
        except BaseException:
            with core.lock:
                core.cancel_wait_locked(waiter)
            raise
        if got is None:
            raise PoolTimeout(f"pool {self.name!r}: no object became free within {timeout} s "
                              f"(max_size={self.max_size})")
        return got

    async def _create(self) -> Entry[T]:
        core = self._core
        began = time.perf_counter()
        try:
            obj = await _maybe_await(self._factory())
        except asyncio.CancelledError:
            with core.lock:
                core.create_failed_locked(count=False)
            raise
        except BaseException:
            with core.lock:
                core.create_failed_locked()
            raise
        self._recorder.record_create(time.perf_counter() - began)
        try:
            with core.lock:
                return core.created_locked(obj)
        except BaseException:
            await self._call_destroy(obj)
            raise

    async def _healthy(self, entry: Entry[T]) -> bool:
        check = self._health_check
        if check is None:
            return True
        try:
            return bool(await _maybe_await(check(entry.obj)))
        except Exception as error:  # noqa: BLE001 - a raising check means a broken object
            _log.debug("otel_memory: pool %r health check raised %s", self.name,
                       type(error).__name__)
            return False
        except BaseException:  # cancelled mid-check: the object goes back, the borrow never was
            with self._core.lock:
                self._core.borrows -= 1
                self._core.give_back_locked(entry)
            raise

    # --- giving back -------------------------------------------------------------------------

    async def _give_back(self, entry: Entry[T]) -> None:
        core = self._core
        if entry.generation != core.generation:
            core.orphan(entry)
            return
        if self._reset is not None:
            try:
                await _maybe_await(self._reset(entry.obj))
            except Exception as error:  # noqa: BLE001 - a failing reset means a broken object
                _log.debug("otel_memory: pool %r reset raised %s", self.name, type(error).__name__)
                await self._destroy_lent(entry, REASON_HEALTH_CHECK)
                return
            except BaseException:  # cancelled mid-reset: the object's state is unknown
                await asyncio.shield(self._destroy_lent(entry, REASON_HEALTH_CHECK))
                raise
        if self.options.check_on_return and not await self._healthy(entry):
            await self._destroy_lent(entry, REASON_HEALTH_CHECK)
            return
        if self._time_borrows and entry.borrowed_at:
            self._recorder.record_use(time.monotonic() - entry.borrowed_at)
        with core.lock:
            kept = core.give_back_locked(entry)
        if not kept:
            await self._call_destroy(entry.obj)

    async def _discard(self, entry: Entry[T]) -> None:
        await self._destroy_lent(entry, REASON_DISCARDED)

    async def _destroy_lent(self, entry: Entry[T], reason: str, *, unlend: bool = False) -> None:
        with self._core.lock:
            mine = self._core.destroy_borrowed_locked(entry, reason, unlend=unlend)
        if mine:
            await self._call_destroy(entry.obj)

    def _reclaim(self, entry: Entry[T]) -> None:
        # From AsyncPooled.__del__: never lock; queue and ask the loop to process it.
        self._core.reclaimed.append(entry)
        loop = self._loop
        try:
            if loop is None:
                raise RuntimeError("no loop")
            loop.call_soon_threadsafe(self._spawn, self._process_reclaimed_async)
        except RuntimeError:
            housekeeping.poke(self)

    async def _process_reclaimed_async(self) -> None:
        reclaimed = self._core.reclaimed
        while reclaimed:
            try:
                entry = reclaimed.popleft()
            except IndexError:
                return
            if entry.generation != self._core.generation:
                self._core.orphan(entry)
                continue
            self._count_leak(entry)
            await self._give_back(entry)

    def _process_reclaimed(self) -> None:
        # Housekeeping thread: hand the work to the loop, or, with the loop gone, drop the slots.
        if self._on_loop(self._process_reclaimed_async):
            return
        reclaimed = self._core.reclaimed
        while reclaimed:
            entry = reclaimed.popleft()
            if entry.generation != self._core.generation:
                self._core.orphan(entry)
                continue
            self._count_leak(entry)
            with self._core.lock:
                self._core.destroy_borrowed_locked(entry, REASON_DISCARDED)
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

    async def _call_destroy(self, obj: T) -> None:
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

    async def _destroy_all(self, entries: list[Entry[T]]) -> None:
        for entry in entries:
            await self._call_destroy(entry.obj)

    def _destroy_entries(self, entries: list[Entry[T]]) -> None:
        if self._destroy is None or not entries:
            return
        if self._on_loop(lambda: self._destroy_all(entries)):
            return
        for entry in entries:
            self._destroy_without_loop(entry.obj)

    def _refill(self) -> None:
        self._on_loop(self._refill_async)

    async def _refill_async(self) -> None:
        core = self._core
        while True:
            with core.lock:
                if not core.reserve_for_idle_locked():
                    return
            began = time.perf_counter()
            try:
                obj = await _maybe_await(self._factory())
            except Exception as error:  # noqa: BLE001 - counted; the next tick retries
                with core.lock:
                    core.create_failed_locked()
                self._warn_once("refill", "otel_memory: pool %r: creating min_idle objects "
                                "failed: %s", self.name, type(error).__name__)
                return
            self._recorder.record_create(time.perf_counter() - began)
            with core.lock:
                kept = core.created_idle_locked(obj)
            if not kept:
                await self._call_destroy(obj)
                return

    async def close(self) -> None:
        """Refuse new borrows, wake waiters with PoolClosed and destroy idle objects."""
        with self._core.lock:
            drained = self._core.close_locked()
        await self._destroy_all(drained)

    async def __aenter__(self) -> AsyncObjectPool[T]:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
