"""Memory-aware caches: SmartCache, the smart_cached decorator and adapters for existing caches.

Example::

    from otel_memory.cache import SmartCache, smart_cached, instrument_lru_cache

    cache = SmartCache(manager, 1000, 50, 300, name="users")
"""

from .adapters import InstrumentedCache, instrument_cachetools, instrument_lru_cache
from .decorator import CachedFunction, smart_cached
from .metrics import CacheStats
from .policy import CacheBudgetPolicy, CachePressurePolicy
from .sizing import deep_size, estimate_size
from .smart_cache import SmartCache

__all__ = [
    "CacheBudgetPolicy",
    "CachePressurePolicy",
    "CacheStats",
    "CachedFunction",
    "InstrumentedCache",
    "SmartCache",
    "deep_size",
    "estimate_size",
    "instrument_cachetools",
    "instrument_lru_cache",
    "smart_cached",
]
