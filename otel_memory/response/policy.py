"""The pressure policy: which actions run at which pressure level.

The default follows the original design's table: LOW nothing, MODERATE shrink caches, HIGH
force GC and shrink caches (and release idle pool objects, then give freed heap back with
``malloc_trim``), CRITICAL the same while admission control rejects new work. Replace it by
passing another ``PressurePolicy`` (or a subclass overriding ``actions_for``) to
``MemoryPressureManager``.

Example::

    policy = PressurePolicy(moderate=(), high=(GC_COLLECT,))   # no cache shrinking at MODERATE
    policy.actions_for(MemoryPressure.HIGH)                    # ('gc_collect',)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..pressure import MemoryPressure
from .actions import CACHE_SHRINK, GC_COLLECT, MALLOC_TRIM, POOL_RELEASE

KNOWN_ACTIONS = (CACHE_SHRINK, POOL_RELEASE, GC_COLLECT, MALLOC_TRIM)
_FULL = (CACHE_SHRINK, POOL_RELEASE, GC_COLLECT, MALLOC_TRIM)


@dataclass(frozen=True)
class PressurePolicy:
    """Actions per pressure level, each one of cache_shrink, pool_release, gc_collect, malloc_trim.

    cache_shrink and pool_release tell the MemoryManager's registered responders of that kind
    again while pressure persists (the manager itself tells them of every change of level).

    Example::

        PressurePolicy(high=(GC_COLLECT, MALLOC_TRIM), critical=(GC_COLLECT, MALLOC_TRIM))
    """

    low: tuple[str, ...] = ()
    moderate: tuple[str, ...] = (CACHE_SHRINK,)
    high: tuple[str, ...] = _FULL
    critical: tuple[str, ...] = _FULL

    def __post_init__(self) -> None:
        for level in MemoryPressure:
            actions = getattr(self, level.state)
            if not isinstance(actions, tuple):
                raise ConfigError(f"PressurePolicy.{level.state}={actions!r} is not a tuple; expected "
                                  f"a tuple of action names from {KNOWN_ACTIONS}")
            for action in actions:
                if action not in KNOWN_ACTIONS:
                    raise ConfigError(f"PressurePolicy.{level.state} has unknown action {action!r}; "
                                      f"expected one of {KNOWN_ACTIONS}")

    def actions_for(self, level: MemoryPressure) -> tuple[str, ...]:
        """The actions to run while pressure is at ``level``."""
        actions: tuple[str, ...] = getattr(self, MemoryPressure(level).state)
        return actions
