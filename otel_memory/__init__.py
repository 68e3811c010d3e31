"""otel_memory: memory observability for Python services through OpenTelemetry."""

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
from .manager import MemoryManager, MemoryStats
from .pressure import MemoryPressure
from .trend import MemoryTrend, TrendReport

__all__ = [
    "CacheRefused",
    "ConfigError",
    "EntryTooLarge",
    "MemoryInstrumentor",
    "MemoryLimitConfig",
    "MemoryManagementConfig",
    "MemoryManager",
    "MemoryPressure",
    "MemoryPressureRejected",
    "MemoryStats",
    "MemoryTrend",
    "OtelMemoryError",
    "PoolClosed",
    "PoolExhausted",
    "PoolTimeout",
    "TrendReport",
    "instrument",
    "uninstrument",
]
