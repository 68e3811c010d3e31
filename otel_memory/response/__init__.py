"""Responding to memory pressure: the policy, its actions, the manager that runs them, the guard.

Example::

    from otel_memory.response import MemoryPressureManager, PressurePolicy, memory_guard

    pressure = MemoryPressureManager(manager, PressurePolicy())
    pressure.start()
"""

from .actions import (
    CACHE_SHRINK,
    GC_COLLECT,
    MALLOC_TRIM,
    POOL_RELEASE,
    ActionResult,
    MallocTrim,
    RateLimiter,
)
from .guard import ADMISSION_DECORATOR, memory_guard
from .manager import MemoryPressureManager
from .policy import KNOWN_ACTIONS, PressurePolicy

__all__ = [
    "ADMISSION_DECORATOR",
    "CACHE_SHRINK",
    "GC_COLLECT",
    "KNOWN_ACTIONS",
    "MALLOC_TRIM",
    "POOL_RELEASE",
    "ActionResult",
    "MallocTrim",
    "MemoryPressureManager",
    "PressurePolicy",
    "RateLimiter",
    "memory_guard",
]
