"""A borrow scope usable as ``with`` (sync pool) and ``async with`` (asyncio pool), and the
pair of pools behind it.

The integrations' ``get_connection()`` / ``get_client()`` return a ``BorrowScope``: the same
call serves threaded and asyncio code, each from its own pool of a ``PoolPair``.

Example::

    with db.get_connection() as conn: ...            # psycopg.Connection
    async with db.get_connection() as conn: ...      # psycopg.AsyncConnection
"""

from __future__ import annotations

import math
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from .. import forking
from ..errors import ArgumentTypeError, ConfigError
from ..errors import describe_value as describe
from ..pool import AsyncObjectPool, AsyncPooled, ObjectPool, Pooled, PoolStats

if TYPE_CHECKING:
    from ..manager import MemoryManager

S = TypeVar("S")
A = TypeVar("A")

ExitHook = Callable[[Any, BaseException | None], bool]
AsyncExitHook = Callable[[Any, BaseException | None], Awaitable[bool]]


def check_size(owner: str, size: object) -> int:
    """``size`` of a client pool, or ConfigError naming it (before any pool is made)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"{owner}: size={describe(size)} is not valid: expected an integer >= 1 (the most "
                          "objects each of its sync and asyncio pools holds)")
    return size


def check_seconds(owner: str, name: str, value: object) -> float:
    """A request timeout: a finite number of seconds > 0, or ConfigError naming it."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 < value < math.inf):
        raise ConfigError(f"{owner}: {name}={describe(value)} is not valid: expected a finite number of "
                          "seconds > 0")
    return float(value)


def check_base_url(owner: str, base_url: object, *, required: bool) -> str:
    """An absolute http(s) URL (or "" when not ``required``); the error never quotes the URL,
    which may hold credentials."""
    if not isinstance(base_url, str):
        raise ArgumentTypeError(f"{owner}: base_url is a {type(base_url).__name__}; expected a str "
                                "such as 'https://api.example.com/v1'")
    if not base_url and not required:
        return base_url
    try:
        parts = urlsplit(base_url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(f"{owner}: base_url is not valid: expected an absolute http:// or https:// "
                          "URL with a host (and a port from 0 to 65535), such as "
                          "'https://api.example.com/v1'")
    return base_url


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


class PoolPair(Generic[S, A]):
    """A sync pool made at once and an asyncio pool (``<name>.async``) made on first use.

    Subclasses pass the sync pool and implement ``_make_async_pool``; both pools are
    registered with the manager as pressure responders when one is given.

    Example::

        class HttpClientPool(PoolPair[httpx.Client, httpx.AsyncClient]):
            def _make_async_pool(self): return AsyncObjectPool(f"{self.name}.async", ...)
    """

    def __init__(self, name: str, size: int, manager: MemoryManager | None,
                 sync_pool: ObjectPool[S]) -> None:
        self.name = name
        self.size = size
        self._manager = manager
        self._lock = threading.Lock()
        self._pool = sync_pool
        self._async_pool: AsyncObjectPool[A] | None = None
        if manager is not None:
            manager.register_responder(sync_pool)
        forking.after_fork_in_child(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()   # a thread of the parent may have held it at the fork

    def _make_async_pool(self) -> AsyncObjectPool[A]:
        raise NotImplementedError

    @property
    def pool(self) -> ObjectPool[S]:
        """The sync pool."""
        return self._pool

    @property
    def async_pool(self) -> AsyncObjectPool[A]:
        """The asyncio pool (created on first use)."""
        with self._lock:
            if self._async_pool is None:
                self._async_pool = self._make_async_pool()
                if self._manager is not None:
                    self._manager.register_responder(self._async_pool)
            return self._async_pool

    def _scope(self, timeout: float | None, on_exit: ExitHook | None = None,
               on_async_exit: AsyncExitHook | None = None) -> BorrowScope[S, A]:
        return BorrowScope(lambda: self._pool, lambda: self.async_pool, timeout, on_exit,
                           on_async_exit)

    def stats(self) -> PoolStats:
        """The sync pool's sizes and counters."""
        return self._pool.stats()

    def close(self) -> None:
        """Close the sync pool (the asyncio pool, if used, with ``aclose``)."""
        self._pool.close()

    async def aclose(self) -> None:
        """Close both pools."""
        self._pool.close()
        if self._async_pool is not None:
            await self._async_pool.close()
