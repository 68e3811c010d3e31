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
        if not 0 <= self.hysteresis < self.moderate:
            raise ConfigError(
                f"hysteresis={self.hysteresis} bytes; expected >= 0 and below the moderate threshold "
                f"({self.moderate} bytes), or no level could ever be left")

    @classmethod
    def from_limit(cls, limit: int) -> Thresholds:
        """The original design's ratios of a limit: 75%, ~78% and 87.5%, band 2%."""
        return cls(int(limit * WARNING_RATIO), int(limit * GC_PRESSURE_RATIO),
                   int(limit * CRITICAL_RATIO), int(limit * HYSTERESIS_RATIO))

    @classmethod
    def resolve(cls, config: MemoryLimitConfig, limit: int) -> Thresholds:
        """Configured thresholds (MB) where given, the ratios of ``limit`` elsewhere.

        A threshold left to its default moves out of the way of a configured neighbour, so
        configuring one threshold never puts the defaults out of order. Configured values that
        cannot work against the effective limit raise ConfigError naming the field.
        """
        default = cls.from_limit(limit)

        def pick(value_mb: float | None, fallback: int) -> int:
            return fallback if value_mb is None else int(value_mb * MB)

        moderate = pick(config.warning_threshold_mb, default.moderate)
        high = pick(config.gc_pressure_threshold_mb, default.high)
        critical = pick(config.critical_threshold_mb, default.critical)
        hysteresis = pick(config.hysteresis_mb, default.hysteresis)
        if config.hysteresis_mb is None:
            hysteresis = min(hysteresis, moderate // 2)   # a low warning threshold narrows the band
        if config.gc_pressure_threshold_mb is None:
            high = min(max(high, moderate), critical)
        else:
            if config.warning_threshold_mb is None:
                moderate = min(moderate, high)
            if config.critical_threshold_mb is None:
                critical = max(critical, high)
        for name, value in (("critical_threshold_mb", critical), ("gc_pressure_threshold_mb", high),
                            ("warning_threshold_mb", moderate)):
            if value > limit:
                raise ConfigError(
                    f"{name}={value / MB:g} is above the effective limit of {limit / MB:g} MB; "
                    "expected a threshold at or below the limit")
        if not moderate < critical:
            raise ConfigError(
                f"warning threshold {moderate / MB:g} MB must be below the critical threshold "
                f"{critical / MB:g} MB (effective limit {limit / MB:g} MB); set "
                "warning_threshold_mb and critical_threshold_mb in order")
        if hysteresis >= moderate:
            raise ConfigError(
                f"hysteresis_mb={hysteresis / MB:g} must be below the warning threshold "
                f"{moderate / MB:g} MB; expected a band narrower than the lowest threshold")
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
