"""The data of a pool: validated options, a stats snapshot and the destroy reasons.

Example::

    options = PoolOptions.validate("db", 10, min_idle=2, max_lifetime=1800.0)
    stats.destroyed_by(REASON_HEALTH_CHECK)
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..errors import describe_value as describe

REASON_HEALTH_CHECK = "health_check"
REASON_MAX_LIFETIME = "max_lifetime"
REASON_IDLE_TIMEOUT = "idle_timeout"
REASON_PRESSURE = "pressure"
REASON_DISCARDED = "discarded"
REASON_CLOSED = "closed"
DESTROY_REASONS = (REASON_HEALTH_CHECK, REASON_MAX_LIFETIME, REASON_IDLE_TIMEOUT, REASON_PRESSURE,
                   REASON_DISCARDED, REASON_CLOSED)


@dataclass(frozen=True)
class PoolOptions:
    """Validated constructor options of a pool.

    Example::

        options = PoolOptions.validate("db", 10, min_idle=2, max_lifetime=1800.0)
    """

    name: str
    max_size: int
    min_idle: int = 0
    timeout: float | None = 30.0
    max_waiting: int | None = None
    max_lifetime: float | None = None
    idle_timeout: float | None = None
    leak_detection_threshold: float | None = None
    check_on_return: bool = False
    measure_use_time: bool = False

    @classmethod
    def validate(cls, name: object, max_size: object, **options: Any) -> PoolOptions:
        """Check every option; ConfigError names the option, the value and what was expected."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"pool name={name!r} is not valid: expected a non-empty string")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ConfigError(f"pool {name!r}: max_size={describe(max_size)} is not valid: "
                              "expected an integer >= 1")
        min_idle = options.get("min_idle", 0)
        if isinstance(min_idle, bool) or not isinstance(min_idle, int) or not 0 <= min_idle <= max_size:
            raise ConfigError(f"pool {name!r}: min_idle={describe(min_idle)} is not valid: "
                              f"expected an integer from 0 to max_size ({max_size})")
        max_waiting = options.get("max_waiting")
        if max_waiting is not None and (isinstance(max_waiting, bool) or not isinstance(max_waiting, int)
                                        or max_waiting < 0):
            raise ConfigError(f"pool {name!r}: max_waiting={describe(max_waiting)} is not valid: "
                              "expected None or an integer >= 0")
        for key in ("timeout", "max_lifetime", "idle_timeout", "leak_detection_threshold"):
            value = options.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or math.isnan(value) or value < 0
                                      or (key != "timeout" and value == 0)):
                bound = ">= 0" if key == "timeout" else "> 0"
                raise ConfigError(f"pool {name!r}: {key}={describe(value)} is not valid: "
                                  f"expected None or a number of seconds {bound} (math.inf: no limit)")
            if value is not None and value >= threading.TIMEOUT_MAX:
                options[key] = None   # math.inf (or centuries): no limit; a lock cannot wait that long
        return cls(name=name, max_size=max_size, **options)


@dataclass(frozen=True)
class PoolStats:
    """One consistent reading of a pool's state and counters (what its metrics export).

    Example::

        stats = pool.stats()
        stats.borrowed, stats.idle, stats.destroyed_by("health_check")
    """

    name: str
    size: int
    idle: int
    borrowed: int
    max_size: int
    min_idle: int
    pending_requests: int
    borrows: int
    timeouts: int
    rejections: int
    created: int
    create_errors: int
    destroyed: tuple[tuple[str, int], ...]
    leaked_borrows: int
    max_idle: int

    def destroyed_by(self, reason: str) -> int:
        """Objects destroyed for ``reason`` (one of DESTROY_REASONS)."""
        for key, count in self.destroyed:
            if key == reason:
                return count
        raise KeyError(f"{reason!r} is not a destroy reason; expected one of {DESTROY_REASONS}")

    @property
    def destroyed_total(self) -> int:
        """Objects destroyed for any reason."""
        return sum(count for _, count in self.destroyed)
