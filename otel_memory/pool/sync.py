"""ObjectPool: the thread-safe pool.

The borrow path is a deque pop under one uncontended lock and a few integer updates; user
hooks (factory, health check, reset, destroy) always run outside the lock. Waiters park on a
private lock each, served first-come first-served by direct hand-off. The slow paths are the
protocols of ``_flow``, shared with AsyncObjectPool; this module only carries their steps out.

Example::

    pool = ObjectPool("parsers", make_parser, 8, health_check=lambda p: p.ok, timeout=2.0)
    with pool.borrow() as parser:
        parser.feed(data)
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from . import _housekeeping as housekeeping
from ._base import PoolBase
from ._core import REASON_DISCARDED, Entry, PoolStats, T, Waiter
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
    run,
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
        entry = self.core.take_fast() if self.fast_take and not self.core.reclaimed else None
        return Pooled(self, entry or self.lend_entry(timeout))

    def lend_entry(self, timeout: float | None) -> Entry[T]:
        if self.core.reclaimed:
            self._process_reclaimed()
        return run(acquire(self, timeout, _ThreadWaiter), self._carry_out)

    def _carry_out(self, step: str, argument: Any) -> Any:
        """One step of a protocol in ``_flow``: call the hook, or park until woken."""
        if step == WAIT:
            waiter, deadline = argument
            if deadline is None:
                waiter.parked.acquire()
            else:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    waiter.parked.acquire(timeout=remaining)
            return None
        if step == CREATE:
            return self._factory()
        if step == CHECK:
            return self._health_check(argument.obj)  # type: ignore[misc]
        if step == RESET:
            return self._reset(argument.obj)  # type: ignore[misc]
        for obj in argument:  # DESTROY
            self.destroy_object(obj)
        return None

    # --- giving back -------------------------------------------------------------------------

    def take_back(self, entry: Entry[T]) -> None:
        run(give_back(self, entry), self._carry_out)

    def discard_entry(self, entry: Entry[T]) -> None:
        run(destroy_lent(self.core, entry, REASON_DISCARDED), self._carry_out)

    def reclaim_entry(self, entry: Entry[T]) -> None:
        # Called from Pooled.__del__, possibly inside the garbage collector while this very
        # thread holds the pool lock: never lock here, only queue (deque.append is atomic).
        self.core.reclaimed.append(entry)
        housekeeping.poke(self)

    def _process_reclaimed(self) -> None:
        run(give_back_reclaimed(self), self._carry_out)

    # --- destruction, close, refill ----------------------------------------------------------

    def destroy_object(self, obj: T) -> None:
        if self._destroy is None:
            return
        try:
            self._destroy(obj)
        except Exception as error:  # noqa: BLE001 - destroying must not break the caller
            self._warn_once("destroy", "otel_memory: pool %r: destroy raised %s (logged once)",
                            self.name, type(error).__name__)

    def _destroy_entries(self, entries: list[Entry[T]]) -> None:
        for entry in entries:
            self.destroy_object(entry.obj)

    _refilling = False   # a refill thread of this pool runs

    def _refill(self) -> None:
        """Top the idle objects up to min_idle in a thread of this pool's own, one at a time: a
        factory that hangs (a database that does not answer) would otherwise hold up the
        housekeeping thread that every pool of the process shares."""
        with self.core.lock:
            if self._refilling:
                return
            self._refilling = True
        threading.Thread(target=_refill_pool, args=(weakref.ref(self),),
                         name="otel-memory-pool-refill", daemon=True).start()

    def _after_fork_extra(self) -> None:
        self._refilling = False   # the parent's refill thread is not in the child

    def close(self) -> None:
        """Refuse new borrows, wake waiters with PoolClosed and destroy idle objects.

        Objects still lent are destroyed when they come back.
        """
        with self.core.lock:
            drained = self.core.close_locked()
        self._destroy_entries(drained)

    def __enter__(self) -> ObjectPool[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()



def _refill_pool(ref: weakref.ref[ObjectPool[Any]]) -> None:
    pool = ref()
    if pool is None:
        return
    try:
        run(refill(pool), pool._carry_out)
    except Exception as error:  # noqa: BLE001 - the next housekeeping round tries again
        pool._warn_once("refill", "otel_memory: pool %r: topping up min_idle failed: %s "
                        "(logged once)", pool.name, type(error).__name__)
    finally:
        pool._refilling = False
