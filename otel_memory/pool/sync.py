"""ObjectPool: the thread-safe pool.

The borrow path is a deque pop under one uncontended lock and a few integer updates; user
hooks (factory, health check, reset, destroy) always run outside the lock. Waiters park on a
private lock each, served first-come first-served by direct hand-off.

Example::

    pool = ObjectPool("parsers", make_parser, 8, health_check=lambda p: p.ok, timeout=2.0)
    with pool.borrow() as parser:
        parser.feed(data)
"""

from __future__ import annotations

import threading
import time

from ..errors import PoolTimeout
from . import _housekeeping as housekeeping
from ._base import PoolBase, _log
from ._core import (
    CREATE,
    REASON_DISCARDED,
    REASON_HEALTH_CHECK,
    Entry,
    PoolStats,
    T,
    Waiter,
    _Create,
)
from .handle import Borrow, Pooled

__all__ = ["ObjectPool", "PoolStats"]


class _ThreadWaiter(Waiter[T]):
    __slots__ = ("parked",)

    def __init__(self) -> None:
        super().__init__()
        self.parked = threading.Lock()
        self.parked.acquire()

    def wake(self) -> None:
        self.parked.release()


class ObjectPool(PoolBase[T]):
    """A thread-safe pool of expensive objects that exports its own metrics.

    ``factory()`` makes an object; ``health_check(obj)`` (truthy = healthy; raising = broken)
    runs on borrow of an idle object and, with ``check_on_return``, on return; ``reset(obj)``
    runs on every return (raising = broken); ``destroy(obj)`` runs for every object the pool
    destroys (e.g. ``conn.close``). ``max_lifetime`` and ``idle_timeout`` retire objects lazily
    on borrow and return and from one shared housekeeping thread; ``leak_detection_threshold``
    logs the borrower's stack for borrows held too long or never returned.

    After ``os.fork()`` the child starts with an empty pool: the parent's idle objects are
    dropped *without* ``destroy`` (they share sockets with the parent), and objects lent before
    the fork are forgotten when returned.

    Example::

        pool = ObjectPool("buffers", lambda: bytearray(65536), 8, meter_provider=provider)
        with pool.borrow() as buffer:
            buffer[:4] = b"data"
        handle = pool.acquire(timeout=0.5)      # PoolTimeout after 0.5 s
        handle.release()
        pool.close()
    """

    # --- borrowing ---------------------------------------------------------------------------

    def borrow(self, timeout: float | None = None) -> Borrow[T]:
        """``with pool.borrow() as obj:`` lends an object for the block (timeout: pool default)."""
        return Borrow(self, timeout)

    def acquire(self, timeout: float | None = None) -> Pooled[T]:
        """A Pooled handle; raises PoolTimeout, PoolExhausted or PoolClosed."""
        entry = self._core.take_fast() if self._fast_take and not self._core.reclaimed else None
        return Pooled(self, entry or self._acquire_entry(timeout))

    def _acquire_entry(self, timeout: float | None) -> Entry[T]:
        core = self._core
        if core.reclaimed:
            self._process_reclaimed()
        start = time.perf_counter() if self._time_borrows else 0.0
        if timeout is None:
            timeout = self.options.timeout
        waited_since = 0.0
        deadline: float | None = None
        while True:
            retired: list[Entry[T]] = []
            with core.lock:
                got = core.take_locked(_ThreadWaiter, retired)
            if retired:
                self._destroy_entries(retired)
            if isinstance(got, _ThreadWaiter):
                if not waited_since:
                    waited_since = time.perf_counter()
                    deadline = None if timeout is None else time.monotonic() + timeout
                got = self._wait(got, deadline, timeout)
            if got is CREATE:
                entry = self._create()
                break
            assert isinstance(got, Entry)
            if self._health_check is None or self._healthy(got):
                entry = got
                break
            self._destroy_lent(got, REASON_HEALTH_CHECK, unlend=True)
        if waited_since:
            self._recorder.record_wait(time.perf_counter() - waited_since)
        if self._time_borrows:
            self._recorder.record_db_wait(time.perf_counter() - start)
        if core.tracks_leaks:
            core.note_borrower(entry)
        return entry

    def _wait(self, waiter: _ThreadWaiter[T], deadline: float | None,
                    timeout: float | None) -> Entry[T] | _Create:
        core = self._core
        try:
            if deadline is None:
                waiter.parked.acquire()
            else:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    waiter.parked.acquire(timeout=remaining)
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

    def _create(self) -> Entry[T]:
        core = self._core
        began = time.perf_counter()
        try:
            obj = self._factory()
        except BaseException:
            with core.lock:
                core.create_failed_locked()
            raise
        self._recorder.record_create(time.perf_counter() - began)
        try:
            with core.lock:
                return core.created_locked(obj)
        except BaseException:
            self._call_destroy(obj)
            raise

    def _healthy(self, entry: Entry[T]) -> bool:
        check = self._health_check
        if check is None:
            return True
        try:
            return bool(check(entry.obj))
        except Exception as error:  # noqa: BLE001 - a raising check means a broken object
            _log.debug("otel_memory: pool %r health check raised %s", self.name,
                       type(error).__name__)
            return False

    # --- giving back -------------------------------------------------------------------------

    def _give_back(self, entry: Entry[T]) -> None:
        core = self._core
        if entry.generation != core.generation:
            core.orphan(entry)
            return
        if self._reset is not None:
            try:
                self._reset(entry.obj)
            except Exception as error:  # noqa: BLE001 - a failing reset means a broken object
                _log.debug("otel_memory: pool %r reset raised %s", self.name, type(error).__name__)
                self._destroy_lent(entry, REASON_HEALTH_CHECK)
                return
        if self.options.check_on_return and not self._healthy(entry):
            self._destroy_lent(entry, REASON_HEALTH_CHECK)
            return
        if self._time_borrows and entry.borrowed_at:
            self._recorder.record_use(time.monotonic() - entry.borrowed_at)
        with core.lock:
            kept = core.give_back_locked(entry)
        if not kept:
            self._call_destroy(entry.obj)

    def _discard(self, entry: Entry[T]) -> None:
        self._destroy_lent(entry, REASON_DISCARDED)

    def _destroy_lent(self, entry: Entry[T], reason: str, *, unlend: bool = False) -> None:
        with self._core.lock:
            mine = self._core.destroy_borrowed_locked(entry, reason, unlend=unlend)
        if mine:
            self._call_destroy(entry.obj)

    def _reclaim(self, entry: Entry[T]) -> None:
        # Called from Pooled.__del__, possibly inside the garbage collector while this very
        # thread holds the pool lock: never lock here, only queue (deque.append is atomic).
        self._core.reclaimed.append(entry)
        housekeeping.poke(self)

    def _process_reclaimed(self) -> None:
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
            self._give_back(entry)

    # --- destruction, close, refill ----------------------------------------------------------

    def _call_destroy(self, obj: T) -> None:
        if self._destroy is None:
            return
        try:
            self._destroy(obj)
        except Exception as error:  # noqa: BLE001 - destroying must not break the caller
            self._warn_once("destroy", "otel_memory: pool %r: destroy raised %s (logged once)",
                            self.name, type(error).__name__)

    def _destroy_entries(self, entries: list[Entry[T]]) -> None:
        for entry in entries:
            self._call_destroy(entry.obj)

    def _refill(self) -> None:
        core = self._core
        while True:
            with core.lock:
                if not core.reserve_for_idle_locked():
                    return
            began = time.perf_counter()
            try:
                obj = self._factory()
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
                self._call_destroy(obj)
                return

    def close(self) -> None:
        """Refuse new borrows, wake waiters with PoolClosed and destroy idle objects.

        Objects still lent are destroyed when they come back.
        """
        with self._core.lock:
            drained = self._core.close_locked()
        self._destroy_entries(drained)

    def __enter__(self) -> ObjectPool[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

