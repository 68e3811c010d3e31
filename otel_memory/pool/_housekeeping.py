"""One shared, weakref-holding housekeeping thread for every pool of the process.

Pools retire objects lazily on borrow and return; this thread covers what nobody borrows:
idle objects past ``max_lifetime``/``idle_timeout``, topping idle objects up to ``min_idle``,
warnings for borrows held past ``leak_detection_threshold``, and handles reclaimed by the
garbage collector (``poke`` is safe to call from ``__del__``: it only puts on a SimpleQueue).
The thread starts with the first pool that needs it and ends when no pool is left.

Example::

    housekeeping.register(pool)     # pool has _housekeep() and housekeeping_interval
    housekeeping.poke(pool)         # from Pooled.__del__
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import traceback
import weakref
from typing import Protocol

_log = logging.getLogger("otel_memory")

IDLE_WAIT_S = 5.0
MIN_INTERVAL_S = 0.02
MAX_INTERVAL_S = 1.0


class Housekept(Protocol):
    """A pool the housekeeping thread looks after.

    Example::

        class MyPool:
            housekeeping_interval = 0.5
            def _housekeep(self) -> None: ...
    """

    housekeeping_interval: float | None

    def _housekeep(self) -> None: ...


_pools: weakref.WeakSet[Housekept] = weakref.WeakSet()
_wakeups: queue.SimpleQueue[weakref.ref[Housekept]] = queue.SimpleQueue()
_lock = threading.Lock()
_thread: threading.Thread | None = None
_pid = os.getpid()


def register(pool: Housekept) -> None:
    """Look after ``pool`` (held weakly) and make sure the thread runs."""
    with _lock:
        _pools.add(pool)
        _ensure_thread_locked()
    poke(pool)  # the thread recomputes its interval now, not after its current wait


def unregister(pool: Housekept) -> None:
    """Stop looking after ``pool``."""
    with _lock:
        _pools.discard(pool)


def poke(pool: Housekept) -> None:
    """Ask for ``pool._housekeep()`` soon. Reentrant: safe from ``__del__`` and finalizers."""
    _wakeups.put(weakref.ref(pool))


def running() -> bool:
    """True while the housekeeping thread is alive."""
    thread = _thread
    return thread is not None and thread.is_alive()


def _ensure_thread_locked() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    _thread = threading.Thread(target=_run, name="otel-memory-pool-housekeeping", daemon=True)
    _thread.start()


def _interval() -> float:
    intervals = [p.housekeeping_interval for p in list(_pools) if p.housekeeping_interval]
    if not intervals:
        return IDLE_WAIT_S
    return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, min(intervals)))


def _run() -> None:
    global _thread
    while True:
        try:
            ref = _wakeups.get(timeout=_interval())
        except queue.Empty:
            ref = None
        targets = [ref()] if ref is not None else list(_pools)
        pool: Housekept | None = None
        for pool in targets:
            if pool is None:
                continue
            try:
                pool._housekeep()
            except Exception as error:  # noqa: BLE001 - housekeeping must never die
                _warn_failure(error)
        del targets, ref, pool
        with _lock:
            if not _pools and _wakeups.empty():
                if _thread is threading.current_thread():
                    _thread = None
                return


_failures: set[tuple[str, str]] = set()


def _warn_failure(error: Exception) -> None:
    """One warning per kind of failure: its type and where it was raised, never its message
    (it may quote a hook's data, such as a DSN)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    if (type(error).__name__, where) not in _failures:
        _failures.add((type(error).__name__, where))
        _log.warning("otel_memory: pool housekeeping failed: %s raised at %s (logged once)",
                     type(error).__name__, where)


def _after_fork_in_child() -> None:
    """Forget the parent's thread, lock and queue; once per child, however many pools call it."""
    global _lock, _thread, _wakeups, _pid
    if _pid == os.getpid():
        return  # another pool already reset this child (and may have started its thread)
    _pid = os.getpid()
    _lock = threading.Lock()
    _wakeups = queue.SimpleQueue()  # a parent thread may have held its internal lock
    _thread = None
