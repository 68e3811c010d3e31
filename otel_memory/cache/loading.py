"""One load in flight: concurrent misses for the same key wait for the first loader's result.

Example::

    flight = Flight()
    # loader thread:               # waiting threads:
    flight.succeed(value)          value = flight.wait()
"""

from __future__ import annotations

import threading
from typing import Any


class Flight:
    """The result (or exception) of one loader call, handed to every thread that waits for it.

    Example::

        flight = Flight()
        flight.fail(KeyError("user:7"))
        flight.wait()          # raises KeyError('user:7')
    """

    __slots__ = ("_done", "_error", "_value", "loader_thread", "outdated")

    def __init__(self) -> None:
        self.loader_thread = threading.get_ident()
        """The thread that runs the loader (the one that made the Flight)."""
        self.outdated = False
        """Set when the key was set, removed or cleared while the loader ran: its value, read
        before that, is handed to the waiters but not cached."""
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def succeed(self, value: Any) -> None:
        """Hand ``value`` to the waiters."""
        self._value = value
        self._done.set()

    def fail(self, error: BaseException) -> None:
        """Make the waiters raise ``error``."""
        self._error = error
        self._done.set()

    def wait(self) -> Any:
        """Block until the loader finished; its value, or its exception raised here."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value
