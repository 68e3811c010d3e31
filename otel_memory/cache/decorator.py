"""``smart_cached``: memoize a function or method in a SmartCache with the same bounds.

Concurrent calls with the same arguments compute once (``SmartCache.get_or_load``). A result
the cache refuses (memory pressure, too large) is returned uncached. Arguments must be
hashable; on a method ``self`` is part of the key, so the cache keeps instances alive until
their entries go (as functools.lru_cache does).

Example::

    @smart_cached(manager, max_entries=500, max_memory_mb=16, ttl_seconds=60)
    def render(page_id: int) -> str: ...

    render(7)
    render.cache.cache_stats().hits
"""

from __future__ import annotations

import functools
import inspect
import time
import types
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from opentelemetry import metrics

from . import sizing
from .policy import DEFAULT_POLICY, CacheBudgetPolicy
from .smart_cache import SmartCache

if TYPE_CHECKING:
    from ..manager import MemoryManager

P = ParamSpec("P")
R = TypeVar("R")

_KEYWORDS = object()


def make_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    """The default key: the positional arguments, then the keyword arguments sorted by name."""
    if not kwargs:
        return args[0] if len(args) == 1 and type(args[0]) in (int, str) else args
    return (*args, _KEYWORDS, *sorted(kwargs.items()))


class CachedFunction(Generic[P, R]):
    """A function whose results are kept in ``self.cache`` (a SmartCache).

    Example::

        cached = smart_cached(max_entries=100)(expensive)
        cached(3); cached.cache_clear()
    """

    def __init__(self, func: Callable[P, R], cache: SmartCache[Hashable, R],
                 key: Callable[[tuple[Any, ...], dict[str, Any]], Hashable]) -> None:
        self.__wrapped__ = func
        self.cache = cache
        self._key = key
        functools.update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            key = self._key(args, kwargs)
            hash(key)
        except TypeError as error:
            raise TypeError(f"{self.cache.name}: arguments must be hashable to be cached "
                            f"({error})") from None
        return self.cache.get_or_load(key, lambda _key: self.__wrapped__(*args, **kwargs))

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return types.MethodType(self, instance)

    def cache_clear(self) -> None:
        """Remove every cached result."""
        self.cache.clear()


def smart_cached(
    memory_manager: MemoryManager | None = None,
    max_entries: int = 1000,
    max_memory_mb: float = 50,
    ttl_seconds: float | None = 300,
    *,
    name: str | None = None,
    sizer: sizing.Sizer | str | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    timer: Callable[[], float] = time.monotonic,
    pressure_policy: CacheBudgetPolicy = DEFAULT_POLICY,
    key: Callable[[tuple[Any, ...], dict[str, Any]], Hashable] = make_key,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Decorate a function so its results are cached in a SmartCache named after it."""

    def decorate(func: Callable[P, R]) -> CachedFunction[P, R]:
        if inspect.iscoroutinefunction(func):
            raise TypeError(f"smart_cached cannot cache the coroutine function {func.__qualname__}: "
                            "it would cache coroutine objects, which can be awaited only once")
        cache: SmartCache[Hashable, R] = SmartCache(
            memory_manager, max_entries, max_memory_mb, ttl_seconds,
            name=name or f"{func.__module__}.{func.__qualname__}", sizer=sizer,
            meter_provider=meter_provider, timer=timer, pressure_policy=pressure_policy)
        return CachedFunction(func, cache, key)

    return decorate
