"""Exceptions raised by otel_memory."""


class OtelMemoryError(Exception):
    """Base class of every otel_memory error."""


class ConfigError(OtelMemoryError, ValueError):
    """A configuration value is wrong: the message names the field, the value and what was expected."""


class MemoryPressureRejected(OtelMemoryError):
    """Work was refused because memory pressure is critical."""


class PoolError(OtelMemoryError):
    """Base class of object pool errors."""


class PoolTimeout(PoolError):
    """No object became free within the timeout."""


class PoolExhausted(PoolError):
    """Too many borrowers are already waiting (max_waiting)."""


class PoolClosed(PoolError):
    """The pool is closed and lends nothing."""


class CacheError(OtelMemoryError):
    """Base class of cache errors."""


class EntryTooLarge(CacheError, ValueError):
    """An entry is larger than the cache's whole memory budget."""


class CacheRefused(CacheError):
    """The cache refuses inserts while memory pressure is critical."""
