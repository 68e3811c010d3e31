"""``memory_guard``: the original design's circuit breaker for memory-critical functions.

A guarded function asks ``MemoryManager.admit("decorator")`` before it runs: at CRITICAL
pressure (with admission control on) the call is refused with ``MemoryPressureRejected``, or
answered by ``fallback`` when one is given, and counted in ``memory.admission.rejections``.
Works on plain functions and coroutine functions. Without a manager the process-wide one of
``otel_memory.instrument()`` is used; when there is none, calls pass through.

Example::

    @memory_guard(manager)
    def render_report(rows): ...

    @memory_guard(fallback=lambda *args, **kwargs: None)
    async def embed(text): ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..errors import MemoryPressureRejected

if TYPE_CHECKING:
    from ..manager import MemoryManager

ADMISSION_DECORATOR = "decorator"

_F = TypeVar("_F", bound=Callable[..., Any])


def _resolve(manager: MemoryManager | None) -> MemoryManager | None:
    if manager is not None:
        return manager
    from ..global_manager import current_manager

    return current_manager()


def memory_guard(manager: MemoryManager | None = None, *, fallback: Callable[..., Any] | None = None,
                 point: str = ADMISSION_DECORATOR) -> Callable[[_F], _F]:
    """Decorate a function so that it is refused while memory pressure is critical."""
    if manager is not None and not hasattr(manager, "admit"):
        what = ("a function: write @memory_guard() or @memory_guard(manager), with the "
                "parentheses" if callable(manager) else type(manager).__name__)
        raise TypeError(f"memory_guard(manager=...) was given {what}; expected a MemoryManager "
                        "or None (the global manager)")
    if fallback is not None and not callable(fallback):
        raise TypeError(f"fallback={fallback!r} is not callable; expected a function or None")

    def admitted() -> bool:
        current = _resolve(manager)
        if current is None:
            return True
        try:
            current.admit(point)
        except MemoryPressureRejected:
            if fallback is None:
                raise
            return False
        return True

    def decorate(function: _F) -> _F:
        if not callable(function):
            raise TypeError(f"memory_guard decorates functions, not {type(function).__name__}")
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                if not admitted():
                    assert fallback is not None
                    result = fallback(*args, **kwargs)
                    return await result if inspect.isawaitable(result) else result
                return await function(*args, **kwargs)

            return cast(_F, guarded_async)

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not admitted():
                assert fallback is not None
                return fallback(*args, **kwargs)
            return function(*args, **kwargs)

        return cast(_F, guarded)

    return decorate
