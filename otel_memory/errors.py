"""Exceptions raised by otel_memory, and how a log may describe an error without its message."""

import os
import traceback


class OtelMemoryError(Exception):
    """Base class of every otel_memory error."""


class ConfigError(OtelMemoryError, ValueError):
    """A configuration value is wrong: the message names the field, the value and what was expected."""


class ArgumentTypeError(ConfigError, TypeError):
    """An argument of the wrong type (a ConfigError that is also a TypeError): the message names it."""


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


class SizerError(CacheError, TypeError):
    """A cache's sizer raised, or returned something that is not a number of bytes."""


def describe_value(value: object) -> str:
    """A wrong value as a message may show it: numbers, None and short strings ('30s') as they
    are, anything longer by its type and length only (a string passed in the wrong place may be
    a DSN or a key)."""
    if value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 8):
        return repr(value)
    size = f" of length {len(value)}" if isinstance(value, (str, bytes)) else ""
    return f"<a {type(value).__name__}{size}>"


def error_summary(error: BaseException) -> str:
    """What a log may say of an error from code we call: its type and the file:line that
    raised it, never its message (messages can hold values: keys, URLs, tokens)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    return type(error).__name__ + where
