"""Borrow handles: ``Pooled`` (sync) and ``AsyncPooled`` (asyncio), and the ``borrow()`` scopes.

A handle gives its object back exactly once: on ``release()``, ``discard()``, the end of its
``with`` block, or, as a safety net, when the garbage collector reclaims it (counted in
``memory.pool.leaked_borrows``). ``__del__`` never takes a lock: it queues the object for the
pool's housekeeping (sync) or event loop (asyncio).

Example::

    handle = pool.acquire(timeout=1.0)
    try:
        handle.get().send(b"ping")
    except ConnectionError:
        handle.discard()          # broken: destroyed and replaced
    else:
        handle.release()
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Generic

from ._core import Entry, T

if TYPE_CHECKING:
    from ._base import AsyncLender, Lender


class _Handle(Generic[T]):
    """What Pooled and AsyncPooled share: the entry, ``get``, and the garbage-collector net."""

    __slots__ = ("_entry", "_pool")

    _pool: Lender[T] | AsyncLender[T]

    def __init__(self, pool: Lender[T] | AsyncLender[T], entry: Entry[T]) -> None:
        self._pool = pool
        self._entry: Entry[T] | None = entry

    def get(self) -> T:
        """The borrowed object; RuntimeError once the handle was released."""
        entry = self._entry
        if entry is None:
            raise RuntimeError(f"this handle of pool {self._pool.name!r} was already released")
        return entry.obj

    @property
    def released(self) -> bool:
        """True once the object went back (or was discarded)."""
        return self._entry is None

    def __del__(self) -> None:
        entry = getattr(self, "_entry", None)
        if entry is not None:
            self._entry = None
            try:
                self._pool.reclaim_entry(entry)
            except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to do
                return

    def __repr__(self) -> str:
        state = "released" if self._entry is None else "borrowed"
        return f"<{type(self).__name__} from {self._pool.name!r} {state}>"


class Pooled(_Handle[T]):
    """An object borrowed from an ObjectPool until released.

    Example::

        with pool.acquire() as handle:
            handle.get().append(1)
    """

    __slots__ = ()

    _pool: Lender[T]

    def release(self) -> None:
        """Give the object back to the pool (idempotent)."""
        entry, self._entry = self._entry, None
        if entry is not None:
            pool = self._pool
            if not pool.fast_return:
                pool.take_back(entry)
            elif not pool.core.give_back_fast(entry):
                pool.destroy_object(entry.obj)

    def discard(self) -> None:
        """The object is broken: the pool destroys it and makes a new one when needed."""
        entry, self._entry = self._entry, None
        if entry is not None:
            self._pool.discard_entry(entry)

    def __enter__(self) -> Pooled[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class AsyncPooled(_Handle[T]):
    """An object borrowed from an AsyncObjectPool until released.

    Example::

        async with await pool.acquire() as handle:
            await handle.get().ping()
    """

    __slots__ = ()

    _pool: AsyncLender[T]

    async def release(self) -> None:
        """Give the object back to the pool (idempotent)."""
        entry, self._entry = self._entry, None
        if entry is not None:
            pool = self._pool
            if not pool.fast_return:
                await pool.take_back(entry)
            elif not pool.core.give_back_fast(entry):
                await pool.destroy_object(entry.obj)

    async def discard(self) -> None:
        """The object is broken: the pool destroys it and makes a new one when needed."""
        entry, self._entry = self._entry, None
        if entry is not None:
            await self._pool.discard_entry(entry)

    async def __aenter__(self) -> AsyncPooled[T]:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.release()



class Borrow(Generic[T]):
    """The scope of ``with pool.borrow() as obj:``; the object goes back when the block ends.

    Example::

        with pool.borrow(timeout=1.0) as buffer:
            buffer[:4] = b"data"
    """

    __slots__ = ("_entry", "_pool", "_timeout")

    def __init__(self, pool: Lender[T], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._entry: Entry[T] | None = None

    def __enter__(self) -> T:
        if self._entry is not None:
            raise RuntimeError("a borrow() scope cannot be entered twice")
        pool = self._pool
        entry = None
        if pool.fast_take and not pool.core.reclaimed:
            entry = pool.core.take_fast()
        if entry is None:
            entry = pool.lend_entry(self._timeout)
        self._entry = entry
        return entry.obj

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            pool = self._pool
            if not pool.fast_return:
                pool.take_back(entry)
            elif not pool.core.give_back_fast(entry):
                pool.destroy_object(entry.obj)


class AsyncBorrow(Generic[T]):
    """The scope of ``async with pool.borrow() as obj:``.

    Example::

        async with pool.borrow() as client:
            await client.get("/")
    """

    __slots__ = ("_entry", "_pool", "_timeout")
    _entry: Entry[T] | None

    def __init__(self, pool: AsyncLender[T], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        # _entry is set by __aenter__ (one attribute store less on the hot path)

    async def __aenter__(self) -> T:
        pool = self._pool
        core = pool.core
        if core.idle and pool.fast_take:
            # PoolCore.take_fast_unlocked inlined: this is the whole hot path of an asyncio
            # borrow, serialised by the event loop (see AsyncObjectPool).
            entry = core.idle.pop()
            core.borrowed += 1
            core.borrows += 1
        else:
            entry = await pool.lend_entry(self._timeout)
        self._entry = entry
        return entry.obj

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        entry, self._entry = self._entry, None
        if entry is None:
            return
        pool = self._pool
        core = pool.core
        if (pool.fast_return and not core.waiters and not core.closed
                and entry.generation == core.generation):
            # PoolCore.give_back_fast_unlocked inlined for the common case.
            core.borrowed -= 1
            core.idle.append(entry)
        elif not pool.fast_return:
            await pool.take_back(entry)
        elif not core.give_back_fast_unlocked(entry):
            await pool.destroy_object(entry.obj)
