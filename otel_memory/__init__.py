"""otel_memory: memory observability for Python services through OpenTelemetry."""

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
