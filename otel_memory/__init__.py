"""otel_memory: memory observability for Python services through OpenTelemetry.

Example::

    import otel_memory

    manager = otel_memory.instrument()      # MEMORY_* environment
    otel_memory.__version__                 # '0.1.0'
"""

from ._version import __version__ as __version__
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
from .instrumentor import MemoryInstrumentor, instrument, uninstrument
from .leak import LeakDetector, LeakReport, LeakSuspect
from .manager import MemoryManager, MemoryStats
from .pool import AsyncObjectPool, AsyncPooled, ObjectPool, Pooled, PoolStats
from .pressure import MemoryPressure
from .response import MemoryPressureManager, PressurePolicy, memory_guard
from .trend import MemoryTrend, TrendReport

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
