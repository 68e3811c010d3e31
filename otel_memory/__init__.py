"""otel_memory: memory observability for Python services through OpenTelemetry.

Every public name is loaded on first use, so ``import otel_memory`` costs next to nothing and
``otel_memory.instrument()`` loads only the modules it runs (pools, caches and the
auto-instrumentation class stay unloaded until an application asks for them).

Example::

    import otel_memory

    manager = otel_memory.instrument()      # MEMORY_* environment
    otel_memory.__version__                 # '0.1.0'
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

if TYPE_CHECKING:
    from .cache import (
        CachePressurePolicy,
        SmartCache,
        instrument_cachetools,
        instrument_lru_cache,
        smart_cached,
    )
    from .config import MemoryLimitConfig, MemoryManagementConfig
    from .errors import (
        CacheRefused,
        ConfigError,
        EntryTooLarge,
        MemoryPressureRejected,
        OtelMemoryError,
        PoolClosed,
        PoolExhausted,
        PoolTimeout,
    )
    from .global_manager import instrument, uninstrument
    from .instrumentor import MemoryInstrumentor
    from .leak import LeakDetector, LeakReport, LeakSuspect
    from .manager import MemoryManager, MemoryStats
    from .pool import AsyncObjectPool, AsyncPooled, ObjectPool, Pooled, PoolStats
    from .pressure import MemoryPressure
    from .response import MemoryPressureManager, PressurePolicy, memory_guard
    from .trend import MemoryTrend, TrendReport

# The module of each public name (tests/test_package.py checks it against __all__ and the
# imports above).
_HOMES = {
    "AsyncObjectPool": "pool",
    "AsyncPooled": "pool",
    "CachePressurePolicy": "cache",
    "CacheRefused": "errors",
    "ConfigError": "errors",
    "EntryTooLarge": "errors",
    "LeakDetector": "leak",
    "LeakReport": "leak",
    "LeakSuspect": "leak",
    "MemoryInstrumentor": "instrumentor",
    "MemoryLimitConfig": "config",
    "MemoryManagementConfig": "config",
    "MemoryManager": "manager",
    "MemoryPressure": "pressure",
    "MemoryPressureManager": "response",
    "MemoryPressureRejected": "errors",
    "MemoryStats": "manager",
    "MemoryTrend": "trend",
    "ObjectPool": "pool",
    "OtelMemoryError": "errors",
    "PoolClosed": "errors",
    "PoolExhausted": "errors",
    "PoolStats": "pool",
    "PoolTimeout": "errors",
    "Pooled": "pool",
    "PressurePolicy": "response",
    "SmartCache": "cache",
    "TrendReport": "trend",
    "instrument": "global_manager",
    "instrument_cachetools": "cache",
    "instrument_lru_cache": "cache",
    "memory_guard": "response",
    "smart_cached": "cache",
    "uninstrument": "global_manager",
}

__all__ = [
    "AsyncObjectPool",
    "AsyncPooled",
    "CachePressurePolicy",
    "CacheRefused",
    "ConfigError",
    "EntryTooLarge",
    "LeakDetector",
    "LeakReport",
    "LeakSuspect",
    "MemoryInstrumentor",
    "MemoryLimitConfig",
    "MemoryManagementConfig",
    "MemoryManager",
    "MemoryPressure",
    "MemoryPressureManager",
    "MemoryPressureRejected",
    "MemoryStats",
    "MemoryTrend",
    "ObjectPool",
    "OtelMemoryError",
    "PoolClosed",
    "PoolExhausted",
    "PoolStats",
    "PoolTimeout",
    "Pooled",
    "PressurePolicy",
    "SmartCache",
    "TrendReport",
    "instrument",
    "instrument_cachetools",
    "instrument_lru_cache",
    "memory_guard",
    "smart_cached",
    "uninstrument",
]


def __getattr__(name: str) -> Any:
    """The public ``name``, imported from its module on first use (PEP 562); a submodule
    (``otel_memory.pool``, ``otel_memory.workers``) is imported on first use too."""
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(import_module(f".{home}", __name__), name)
    elif name.startswith("__"):   # what tools probe for (__wrapped__, __loader__ ...): no module
        raise AttributeError(f"module 'otel_memory' has no attribute {name!r}")
    else:
        try:
            value = import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":   # a submodule whose own import failed
                raise
            raise AttributeError(f"module 'otel_memory' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
