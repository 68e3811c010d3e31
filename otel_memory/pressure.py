"""Pressure levels and the hysteresis state machine that computes them from usage.

A level is entered as soon as usage reaches its threshold and left only when usage falls a
hysteresis band below it, so usage hovering around a threshold does not make the level flap.

Example::

    thresholds = Thresholds.from_limit(1024 * MB)
    tracker = PressureTracker(thresholds)
    tracker.update(900 * MB)      # MemoryPressure.CRITICAL
    tracker.update(880 * MB)      # still CRITICAL: 880 MB is inside the band below 896 MB
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .config import (
    CRITICAL_RATIO,
    GC_PRESSURE_RATIO,
    HYSTERESIS_RATIO,
    MB,
    WARNING_RATIO,
    MemoryLimitConfig,
)
from .errors import ConfigError


class MemoryPressure(enum.IntEnum):
    """Memory pressure levels, valued 0-3 as exported by ``memory.pressure.level``."""

    LOW = 0
    MODERATE = 1
    HIGH = 2
    CRITICAL = 3

    @property
    def title(self) -> str:
        """The level as the original design writes it: Low, Moderate, High, Critical."""
        return self.name.capitalize()

    @property
    def state(self) -> str:
        """The level as an attribute value: low, moderate, high, critical."""
        return self.name.lower()


@dataclass(frozen=True)
class Thresholds:
    """Usage in bytes at which MODERATE, HIGH and CRITICAL begin, and the hysteresis band.

    Example::

        Thresholds(moderate=768 * MB, high=800 * MB, critical=896 * MB, hysteresis=20 * MB)
    """

    moderate: int
    high: int
    critical: int
    hysteresis: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.moderate <= self.high <= self.critical:
            raise ConfigError(
                f"thresholds out of order: moderate={self.moderate}, high={self.high}, "
                f"critical={self.critical} bytes; expected 0 < moderate <= high <= critical")
        if self.hysteresis < 0:
            raise ConfigError(f"hysteresis={self.hysteresis} bytes; expected >= 0")

    @classmethod
    def from_limit(cls, limit: int) -> Thresholds:
        """The original design's ratios of a limit: 75%, ~78% and 87.5%, band 2%."""
        return cls(int(limit * WARNING_RATIO), int(limit * GC_PRESSURE_RATIO),
                   int(limit * CRITICAL_RATIO), int(limit * HYSTERESIS_RATIO))

    @classmethod
    def resolve(cls, config: MemoryLimitConfig, limit: int) -> Thresholds:
        """Configured thresholds (MB) where given, the ratios of ``limit`` elsewhere."""
        default = cls.from_limit(limit)

        def pick(value_mb: float | None, fallback: int) -> int:
            return fallback if value_mb is None else int(value_mb * MB)

        moderate = pick(config.warning_threshold_mb, default.moderate)
        critical = pick(config.critical_threshold_mb, default.critical)
        high = pick(config.gc_pressure_threshold_mb, default.high)
        if config.gc_pressure_threshold_mb is None:
            # Keep the default GC threshold between the configured neighbours.
            high = min(max(high, moderate), critical)
        hysteresis = pick(config.hysteresis_mb, default.hysteresis)
        if critical > limit:
            raise ConfigError(
                f"critical_threshold_mb={critical / MB:g} is above the effective limit of "
                f"{limit / MB:g} MB; expected a threshold at or below the limit")
        if not moderate < critical:
            raise ConfigError(
                f"warning threshold {moderate / MB:g} MB must be below the critical threshold "
                f"{critical / MB:g} MB (effective limit {limit / MB:g} MB)")
        return cls(moderate, high, critical, hysteresis)

    def start_of(self, level: MemoryPressure) -> int:
        """The usage at which ``level`` begins (0 for LOW)."""
        return (0, self.moderate, self.high, self.critical)[level]

    def level_for(self, usage: int) -> MemoryPressure:
        """The level of ``usage`` without hysteresis."""
        if usage >= self.critical:
            return MemoryPressure.CRITICAL
        if usage >= self.high:
            return MemoryPressure.HIGH
        if usage >= self.moderate:
            return MemoryPressure.MODERATE
        return MemoryPressure.LOW


class PressureTracker:
    """The level state machine: rises at once, falls only below threshold minus the band.

    Example::

        tracker = PressureTracker(Thresholds(100, 150, 200, hysteresis=10))
        tracker.update(205), tracker.update(195), tracker.update(185)
        # (CRITICAL, CRITICAL, HIGH)
    """

    def __init__(self, thresholds: Thresholds, level: MemoryPressure = MemoryPressure.LOW) -> None:
        self.thresholds = thresholds
        self.level = level

    def update(self, usage: int) -> MemoryPressure:
        """Feed one usage reading; returns the (possibly unchanged) level."""
        raw = self.thresholds.level_for(usage)
        if raw >= self.level:
            self.level = raw
            return raw
        level = self.level
        band = self.thresholds.hysteresis
        while level > raw and usage < self.thresholds.start_of(level) - band:
            level = MemoryPressure(level - 1)
        self.level = level
        return level
