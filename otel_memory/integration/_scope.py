"""A borrow scope usable as ``with`` (sync pool) and ``async with`` (asyncio pool).

The integrations' ``get_connection()`` / ``get_client()`` return one: the same call serves
threaded and asyncio code, each from its own pool.

Example::

    with db.get_connection() as conn: ...            # psycopg.Connection
    async with db.get_connection() as conn: ...      # psycopg.AsyncConnection
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from ..pool import AsyncObjectPool, AsyncPooled, ObjectPool, Pooled

S = TypeVar("S")
A = TypeVar("A")

ExitHook = Callable[[Any, BaseException | None], bool]
AsyncExitHook = Callable[[Any, BaseException | None], Awaitable[bool]]


class BorrowScope(Generic[S, A]):
    """Lends a sync object in ``with`` and an async one in ``async with``.

    ``on_exit(obj, error)`` / ``on_async_exit`` run before the object goes back and return
    False when it is broken (it is then discarded instead of returned).

    Example::

        scope = BorrowScope(lambda: sync_pool, lambda: async_pool, timeout=2.0)
        with scope as obj: ...
    """

    __slots__ = ("_async_handle", "_get_async", "_get_sync", "_handle", "_on_async_exit", "_on_exit",
                 "_timeout")

    def __init__(self, get_sync: Callable[[], ObjectPool[S]], get_async: Callable[[], AsyncObjectPool[A]],
                 timeout: float | None, on_exit: ExitHook | None = None,
                 on_async_exit: AsyncExitHook | None = None) -> None:
        self._get_sync = get_sync
        self._get_async = get_async
        self._timeout = timeout
        self._on_exit = on_exit
        self._on_async_exit = on_async_exit
        self._handle: Pooled[S] | None = None
        self._async_handle: AsyncPooled[A] | None = None

    def __enter__(self) -> S:
        self._handle = self._get_sync().acquire(self._timeout)
        return self._handle.get()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        healthy = True
        try:
            if self._on_exit is not None:
                healthy = self._on_exit(handle.get(), exc)
        except BaseException:
            handle.discard()
            raise
        if healthy:
            handle.release()
        else:
            handle.discard()

    async def __aenter__(self) -> A:
        self._async_handle = await self._get_async().acquire(self._timeout)
        return self._async_handle.get()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        handle, self._async_handle = self._async_handle, None
        if handle is None:
            return
        healthy = True
        try:
            if self._on_async_exit is not None:
                healthy = await self._on_async_exit(handle.get(), exc)
        except BaseException:
            await handle.discard()
            raise
        if healthy:
            await handle.release()
        else:
            await handle.discard()
