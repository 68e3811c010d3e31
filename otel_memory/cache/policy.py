"""What a cache does at each memory pressure level: the share of its memory budget it keeps.

The default follows the original design ("reduce cache sizes" at Moderate and High, caches
cleared under Critical): MODERATE keeps 75% of the budget, HIGH 50%, CRITICAL clears the cache
and refuses inserts until pressure falls. Replace it by passing another ``CachePressurePolicy``
(or any object with the same two methods) as ``pressure_policy``.

Example::

    gentle = CachePressurePolicy(moderate=0.9, high=0.7, critical=0.25, refuse_when_critical=False)
    cache = SmartCache(manager, 1000, 50, 300, name="sessions", pressure_policy=gentle)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import ConfigError
from ..pressure import MemoryPressure


class CacheBudgetPolicy(Protocol):
    """Anything that says how much of its budget a cache keeps at a level and if it refuses inserts.

    Example::

        class KeepHalfUnderAnyPressure:
            def budget_fraction(self, level: MemoryPressure) -> float:
                return 1.0 if level == MemoryPressure.LOW else 0.5

            def refuses_inserts(self, level: MemoryPressure) -> bool:
                return False

        SmartCache(manager, name="pages", pressure_policy=KeepHalfUnderAnyPressure())
    """

    def budget_fraction(self, level: MemoryPressure) -> float: ...

    def refuses_inserts(self, level: MemoryPressure) -> bool: ...


@dataclass(frozen=True)
class CachePressurePolicy:
    """Share of the memory budget kept at each pressure level (LOW always keeps all of it).

    The fraction decides what a shrink keeps; ``refuse_when_critical`` only stops inserts, so a
    policy with ``critical=0.25`` keeps serving its hottest quarter while refusing new entries.

    Example::

        policy = CachePressurePolicy()
        policy.budget_fraction(MemoryPressure.HIGH)     # 0.5
        policy.refuses_inserts(MemoryPressure.CRITICAL)  # True
    """

    moderate: float = 0.75
    high: float = 0.5
    critical: float = 0.0
    refuse_when_critical: bool = True

    def __post_init__(self) -> None:
        for field in ("moderate", "high", "critical"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"CachePressurePolicy.{field}={value!r}; expected a fraction of the "
                                  "memory budget between 0.0 and 1.0")
        if not self.critical <= self.high <= self.moderate:
            raise ConfigError(
                f"CachePressurePolicy fractions moderate={self.moderate}, high={self.high}, "
                f"critical={self.critical}; expected critical <= high <= moderate")

    def budget_fraction(self, level: MemoryPressure) -> float:
        """The share of the configured memory budget the cache may use at ``level``."""
        return (1.0, self.moderate, self.high, self.critical)[level]

    def refuses_inserts(self, level: MemoryPressure) -> bool:
        """True when inserts raise CacheRefused at ``level``."""
        return self.refuse_when_critical and level == MemoryPressure.CRITICAL


DEFAULT_POLICY = CachePressurePolicy()
