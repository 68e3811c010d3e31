"""Configuration: limits, thresholds, intervals and feature switches, from code or the environment.

Every value is checked when the configuration is made; a wrong one raises ConfigError naming
the field (or environment variable), the value and what was expected.

Example::

    config = MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(max_heap_mb=1024, warning_threshold_mb=768,
                                         critical_threshold_mb=896),
        enable_leak_detection=True,
    )
    config = MemoryManagementConfig.from_env()   # MEMORY_MAX_HEAP_MB=2048 ...
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

_log = logging.getLogger("otel_memory")

MB = 1024 * 1024

# The original design's ratios: warning 768/1024, GC pressure 800/1024, critical 896/1024.
WARNING_RATIO = 0.75
GC_PRESSURE_RATIO = 800 / 1024
CRITICAL_RATIO = 0.875
HYSTERESIS_RATIO = 0.02


#: The largest size in megabytes: 2**63 bytes, the most an OTLP integer point can carry.
MAX_MB = float((1 << 63) // MB - 1)
#: The longest interval: one day (a thread cannot wait past threading.TIMEOUT_MAX anyway).
MAX_INTERVAL_S = 86_400.0


def _number(name: str, value: Any, *, minimum: float = 0.0, allow_zero: bool = False,
            maximum: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        unit = " of seconds" if name.endswith("_s") else " of megabytes" if name.endswith("_mb") else ""
        raise ConfigError(f"{name}={value!r} is not a number; expected a number{unit}")
    if value < minimum or (value == minimum and not allow_zero) or math.isinf(value) or value > maximum:
        bound = f">= {minimum:g}" if allow_zero else f"> {minimum:g}"
        if maximum < math.inf:
            bound += f" and <= {maximum:g}"
        raise ConfigError(f"{name}={value!r} is out of range; expected a finite number {bound}")
    return float(value)


def _integer(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r} is not a whole number; expected an integer >= {minimum}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f">= {minimum} and <= {maximum}"
        raise ConfigError(f"{name}={value!r} is out of range; expected an integer {bound}")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not a boolean; expected True or False")
    return value


@dataclass(frozen=True)
class MemoryLimitConfig:
    """Limits and thresholds of the memory monitor, in megabytes.

    Thresholds left as None follow the effective limit at the original design's ratios:
    warning (moderate pressure) 75%, GC pressure (high pressure) ~78%, critical 87.5%.

    Example::

        MemoryLimitConfig(max_heap_mb=1024, warning_threshold_mb=768,
                          gc_pressure_threshold_mb=800, critical_threshold_mb=896)
    """

    max_heap_mb: float | None = None
    max_stack_mb: float = 8
    warning_threshold_mb: float | None = None
    critical_threshold_mb: float | None = None
    enable_gc_pressure: bool = True
    gc_pressure_threshold_mb: float | None = None
    monitoring_interval_ms: int = 5000
    hysteresis_mb: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_heap_mb", "warning_threshold_mb", "critical_threshold_mb",
                     "gc_pressure_threshold_mb"):
            value = getattr(self, name)
            if value is not None:
                _number(name, value, maximum=MAX_MB)
        if self.max_heap_mb is not None and self.max_heap_mb < 1:
            raise ConfigError(f"max_heap_mb={self.max_heap_mb!r} is out of range; expected at least 1 "
                              "(megabytes: no Python process fits in less)")
        _number("max_stack_mb", self.max_stack_mb, maximum=MAX_MB)
        if self.hysteresis_mb is not None:
            _number("hysteresis_mb", self.hysteresis_mb, allow_zero=True, maximum=MAX_MB)
        _flag("enable_gc_pressure", self.enable_gc_pressure)
        _integer("monitoring_interval_ms", self.monitoring_interval_ms, minimum=10,
                 maximum=int(MAX_INTERVAL_S * 1000))
        warning, gc_mb, critical = (self.warning_threshold_mb, self.gc_pressure_threshold_mb,
                                    self.critical_threshold_mb)
        if warning is not None and critical is not None and not warning < critical:
            raise ConfigError(
                f"warning_threshold_mb={warning!r} must be below critical_threshold_mb={critical!r}")
        if warning is not None and gc_mb is not None and gc_mb < warning:
            raise ConfigError(
                f"gc_pressure_threshold_mb={gc_mb!r} must be at or above warning_threshold_mb={warning!r}")
        if critical is not None and gc_mb is not None and gc_mb > critical:
            raise ConfigError(
                f"gc_pressure_threshold_mb={gc_mb!r} must be at or below critical_threshold_mb={critical!r}")
        if self.max_heap_mb is not None:
            for name in ("warning_threshold_mb", "gc_pressure_threshold_mb", "critical_threshold_mb"):
                value = getattr(self, name)
                if value is not None and value > self.max_heap_mb:
                    raise ConfigError(
                        f"{name}={value!r} must be at or below max_heap_mb={self.max_heap_mb!r}")


@dataclass(frozen=True)
class MemoryManagementConfig:
    """Everything the MemoryManager needs, nested as in the original design.

    Example::

        MemoryManagementConfig(monitor_config=MemoryLimitConfig(max_heap_mb=512),
                               database_connection_pool_size=20, llm_client_pool_size=10)
    """

    monitor_config: MemoryLimitConfig = field(default_factory=MemoryLimitConfig)
    enable_object_pooling: bool = True
    database_connection_pool_size: int = 20
    llm_client_pool_size: int = 10
    http_client_pool_size: int = 10
    enable_leak_detection: bool = True
    leak_detection_threshold_mb: float = 100
    leak_detection_interval_s: float = 60.0
    leak_growth_mb_per_hour: float = 50.0
    enable_leak_attribution: bool = False
    enable_tracemalloc: bool = False
    enable_uss: bool = False
    enable_admission_control: bool = True
    gc_min_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.monitor_config, MemoryLimitConfig):
            raise ConfigError(
                f"monitor_config={type(self.monitor_config).__name__} is not a MemoryLimitConfig")
        for name in ("database_connection_pool_size", "llm_client_pool_size", "http_client_pool_size"):
            _integer(name, getattr(self, name))
        for name in ("enable_object_pooling", "enable_leak_detection", "enable_leak_attribution",
                     "enable_tracemalloc", "enable_uss", "enable_admission_control"):
            _flag(name, getattr(self, name))
        _number("leak_detection_threshold_mb", self.leak_detection_threshold_mb, maximum=MAX_MB)
        _number("leak_detection_interval_s", self.leak_detection_interval_s, maximum=MAX_INTERVAL_S)
        _number("leak_growth_mb_per_hour", self.leak_growth_mb_per_hour, allow_zero=True)
        _number("gc_min_interval_s", self.gc_min_interval_s, allow_zero=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MemoryManagementConfig:
        """Read the configuration from MEMORY_* environment variables (see ENVIRONMENT).

        Unset or empty variables keep their defaults; a malformed one raises ConfigError
        naming the variable, its value and what was expected.
        """
        env = os.environ if environ is None else environ
        _warn_misspelt(env)
        values: dict[str, dict[str, Any]] = {"monitor": {}, "top": {}}
        for variable, (scope, name, kind) in ENVIRONMENT.items():
            raw = env.get(variable, "").strip()
            if raw:
                values[scope][name] = _parse(variable, raw, kind)
        try:
            return cls(monitor_config=MemoryLimitConfig(**values["monitor"]), **values["top"])
        except ConfigError as error:
            message = str(error)
            for variable, (_scope, name, _kind) in ENVIRONMENT.items():
                message = message.replace(f"{name}=", f"{variable}=")
            raise ConfigError(message) from None


def _parse(variable: str, raw: str, kind: type) -> Any:
    if kind is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{variable}={raw!r} is not a boolean; expected true or false")
    try:
        if kind is int:
            return _whole_number(raw)
        return float(raw)
    except ValueError:
        unit = next((name for suffix, name in _UNITS.items() if variable.endswith(suffix)), "")
        if kind is int:
            raise ConfigError(
                f"{variable}={raw!r} is not a whole number; expected a whole number{unit}") from None
        raise ConfigError(f"{variable}={raw!r} is not a number; expected a number{unit}") from None


def _whole_number(raw: str) -> int:
    """``raw`` as an int; integral numbers written as floats ("1e3", "20.0") are accepted."""
    try:
        return int(raw)
    except ValueError:
        number = float(raw)
        if not number.is_integer():
            raise
        return int(number)


def _warn_misspelt(env: Mapping[str, str]) -> None:
    """One warning per MEMORY_* variable that is not one of ours but close to one (a typo)."""
    for variable in env:
        if variable.startswith("MEMORY_") and variable not in ENVIRONMENT:
            import difflib  # only for a misspelt variable: nobody else pays for the import

            close = difflib.get_close_matches(variable, ENVIRONMENT, n=1, cutoff=0.8)
            if close:
                _log.warning("otel_memory: %s is not a variable otel_memory reads (ignored); did you "
                             "mean %s?", variable, close[0])


_UNITS = {"_MB_PER_HOUR": " of megabytes per hour", "_MB": " of megabytes", "_MS": " of milliseconds",
          "_S": " of seconds", "_SIZE": " of objects"}


# variable -> (which dataclass, field, type)
ENVIRONMENT: dict[str, tuple[str, str, type]] = {
    "MEMORY_MAX_HEAP_MB": ("monitor", "max_heap_mb", float),
    "MEMORY_MAX_STACK_MB": ("monitor", "max_stack_mb", float),
    "MEMORY_WARNING_THRESHOLD_MB": ("monitor", "warning_threshold_mb", float),
    "MEMORY_CRITICAL_THRESHOLD_MB": ("monitor", "critical_threshold_mb", float),
    "MEMORY_GC_PRESSURE_THRESHOLD_MB": ("monitor", "gc_pressure_threshold_mb", float),
    "MEMORY_ENABLE_GC_PRESSURE": ("monitor", "enable_gc_pressure", bool),
    "MEMORY_MONITORING_INTERVAL_MS": ("monitor", "monitoring_interval_ms", int),
    "MEMORY_HYSTERESIS_MB": ("monitor", "hysteresis_mb", float),
    "MEMORY_ENABLE_OBJECT_POOLING": ("top", "enable_object_pooling", bool),
    "MEMORY_DB_POOL_SIZE": ("top", "database_connection_pool_size", int),
    "MEMORY_LLM_POOL_SIZE": ("top", "llm_client_pool_size", int),
    "MEMORY_HTTP_POOL_SIZE": ("top", "http_client_pool_size", int),
    "MEMORY_ENABLE_LEAK_DETECTION": ("top", "enable_leak_detection", bool),
    "MEMORY_LEAK_THRESHOLD_MB": ("top", "leak_detection_threshold_mb", float),
    "MEMORY_LEAK_INTERVAL_S": ("top", "leak_detection_interval_s", float),
    "MEMORY_LEAK_GROWTH_MB_PER_HOUR": ("top", "leak_growth_mb_per_hour", float),
    "MEMORY_LEAK_ATTRIBUTION": ("top", "enable_leak_attribution", bool),
    "MEMORY_ENABLE_TRACEMALLOC": ("top", "enable_tracemalloc", bool),
    "MEMORY_ENABLE_USS": ("top", "enable_uss", bool),
    "MEMORY_ENABLE_ADMISSION_CONTROL": ("top", "enable_admission_control", bool),
    "MEMORY_GC_MIN_INTERVAL_S": ("top", "gc_min_interval_s", float),
}

