"""Fork safety: objects that keep per-process state re-create it in a forked child.

The at-fork hook is registered the first time something asks for it, never at import. Objects
are held weakly, so registering never keeps anything alive.

Example::

    class Sampler:
        def _after_fork_in_child(self) -> None:
            self.pid = os.getpid()

    forking.after_fork_in_child(sampler)
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Protocol

from .errors import error_summary

_log = logging.getLogger("otel_memory")


class ProcessLock:
    """A module's lock that a forked child gets anew: a thread of the parent may have held it at
    the fork and would never release it in the child. Checked by process id when used, so
    nothing is hooked at import.

    Example::

        _lock = ProcessLock()
        with _lock:
            ...
    """

    __slots__ = ("_lock", "_pid")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def get(self) -> threading.Lock:
        """The lock of this process."""
        if self._pid != os.getpid():
            self._lock, self._pid = threading.Lock(), os.getpid()
        return self._lock

    def __enter__(self) -> bool:
        return self.get().acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class ForkAware(Protocol):
    """Anything with an ``_after_fork_in_child`` method."""

    def _after_fork_in_child(self) -> None: ...


_objects: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_hooked = False
_lock = threading.Lock()


def after_fork_in_child(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked from now on, while obj lives."""
    global _hooked
    with _lock:
        _objects.add(obj)
        if not _hooked and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_run_child_hooks)
            _hooked = True


def forget(obj: ForkAware) -> None:
    """Stop calling obj's hook."""
    _objects.discard(obj)


def _run_child_hooks() -> None:
    global _lock
    _lock = threading.Lock()
    for obj in list(_objects):
        try:
            obj._after_fork_in_child()
        except Exception as error:  # noqa: BLE001 - a hook must never break the child
            _log.warning("otel_memory: after-fork reset of %s failed: %s",
                         type(obj).__name__, error_summary(error))
