"""What ObjectPool and AsyncObjectPool share beyond the core: options, metrics, pressure,
housekeeping, leak reports and fork handling.

Example::

    class ObjectPool(PoolBase[T]):
        def _destroy_entries(self, entries): ...
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol

from opentelemetry import metrics

from .. import forking
from ..errors import ArgumentTypeError
from ..pressure import MemoryPressure
from . import _housekeeping as housekeeping
from ._core import REASON_PRESSURE, Entry, PoolCore, PoolOptions, PoolStats, T
from .metrics import PoolRecorder, instruments_for

_log = logging.getLogger("otel_memory")

ACTION_POOL_RELEASE = "pool_release"
#: Seconds after which a running hook is reported as hanging, for a pool without a timeout.
HANG_WARNING_S = 30.0
#: The option names of the steps of ``_flow`` that run user code.
HOOK_NAMES = {"create": "factory", "check": "health_check", "reset": "reset"}


class PoolBase(Generic[T]):
    """Shared machinery of the sync and asyncio pools (not used directly).

    Example::

        isinstance(ObjectPool("p", list, 1), PoolBase)   # True
    """

    pressure_action = ACTION_POOL_RELEASE

    def __init__(self, name: str, factory: Callable[[], T], max_size: int, *,
                 min_idle: int = 0, timeout: float | None = 30.0, max_waiting: int | None = None,
                 health_check: Callable[[T], Any] | None = None,
                 reset: Callable[[T], Any] | None = None,
                 destroy: Callable[[T], Any] | None = None,
                 max_lifetime: float | None = None, idle_timeout: float | None = None,
                 leak_detection_threshold: float | None = None, check_on_return: bool = False,
                 measure_use_time: bool = False, db_metrics: bool = False,
                 meter_provider: metrics.MeterProvider | None = None) -> None:
        options = PoolOptions.validate(
            name, max_size, min_idle=min_idle, timeout=timeout, max_waiting=max_waiting,
            max_lifetime=max_lifetime, idle_timeout=idle_timeout,
            leak_detection_threshold=leak_detection_threshold, check_on_return=check_on_return,
            measure_use_time=measure_use_time or db_metrics)
        for label, hook in (("factory", factory), ("health_check", health_check), ("reset", reset),
                            ("destroy", destroy)):
            if hook is not None and not callable(hook):
                raise ArgumentTypeError(f"pool {name!r}: {label} must be callable, got "
                                        f"{type(hook).__name__}; expected a function")
        if factory is None:
            raise ArgumentTypeError(f"pool {name!r}: factory must be callable, got None; expected a "
                                    "function making an object")
        self.options = options
        self._factory = factory
        self._health_check = health_check
        self._reset = reset
        self._destroy = destroy
        self.core: PoolCore[T] = PoolCore(options)
        self._recorder = PoolRecorder(instruments_for(meter_provider), name, db=db_metrics)
        self._recorder.shared.add(self, pool_metrics=True, db_metrics=db_metrics)
        self._time_borrows = db_metrics or measure_use_time
        # Plain borrow and return need no hook, no clock and no stack: the fast path.
        self.fast_take = (health_check is None and not self._time_borrows
                           and not self.core.stamps)
        self.fast_return = (reset is None and not check_on_return and not self._time_borrows
                             and not self.core.stamps)
        self._warned: set[str] = set()
        watched = [v for v in (options.max_lifetime, options.idle_timeout,
                               options.leak_detection_threshold) if v]
        self.housekeeping_interval: float | None = (
            max(housekeeping.MIN_INTERVAL_S, min(watched) / 4) if watched else (1.0 if min_idle else None))
        housekeeping.register(self)
        forking.after_fork_in_child(self)

    # --- read-only state -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The pool's name (the pool.name attribute of its metrics)."""
        return self.options.name

    @property
    def max_size(self) -> int:
        """The most objects the pool holds."""
        return self.options.max_size

    @property
    def timeout(self) -> float | None:
        """Default seconds a borrow waits (None: forever)."""
        return self.options.timeout

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self.core.closed

    def stats(self) -> PoolStats:
        """A consistent snapshot of sizes and counters (the figures the metrics export)."""
        return self.core.stats()

    def __repr__(self) -> str:
        stats = self.core.stats()
        return (f"<{type(self).__name__} {self.name!r} size={stats.size}/{stats.max_size} "
                f"borrowed={stats.borrowed} idle={stats.idle}{' closed' if self.closed else ''}>")

    # --- pressure, housekeeping, fork --------------------------------------------------------

    def respond_to_pressure(self, level: MemoryPressure) -> bool:
        """At HIGH and CRITICAL, destroy idle objects above min_idle; True when any went."""
        if level < MemoryPressure.HIGH:
            return False
        with self.core.lock:
            released = self.core.release_idle_locked(self.options.min_idle, REASON_PRESSURE)
        if released:
            _log.info("otel_memory: pool %r released %d idle objects under %s memory pressure",
                      self.name, len(released), level.title)
            self._destroy_entries(released)
        return bool(released)

    def _watch_hooks(self) -> None:
        """One warning per kind of hook (factory, health_check, reset) found running longer than
        the pool's timeout (HANG_WARNING_S without one): it blocks its borrower, and only it."""
        running = self.core.in_hooks.copy()   # atomic: the borrowers change it without the lock
        if not running:
            return
        limit = self.options.timeout or HANG_WARNING_S
        now = time.monotonic()
        for step, since in running.values():
            if now - since >= limit:
                hook = HOOK_NAMES.get(step, step)
                self._warn_once(f"hang:{step}", "otel_memory: pool %r: %s has been running for %.1f s "
                                "(longer than %.1f s); its borrower waits for it, the other "
                                "borrowers are served (logged once)", self.name, hook, now - since, limit)

    def _housekeep(self) -> None:
        self._watch_hooks()
        core = self.core
        if core.reclaimed:
            self._process_reclaimed()
        with core.lock:
            retired = core.retire_idle_locked()
            overdue = core.overdue_locked()
        if retired:
            self._destroy_entries(retired)
        for entry in overdue:
            self._warn_overdue(entry)
        if not core.closed and self.options.min_idle:
            self._refill()

    def _warn_overdue(self, entry: Entry[T]) -> None:
        held = time.monotonic() - entry.borrowed_at
        _log.warning("otel_memory: pool %r: an object has been borrowed for %.1f s "
                     "(leak_detection_threshold=%.1f s); borrowed at:\n%s", self.name, held,
                     self.options.leak_detection_threshold or 0.0, _format_stack(entry))

    def _count_leak(self, entry: Entry[T]) -> None:
        with self.core.lock:
            self.core.leaked += 1
            self.core.lent.discard(entry)
        if self.core.tracks_leaks:
            _log.warning("otel_memory: pool %r: a borrowed object was never returned and was "
                         "reclaimed by the garbage collector; borrowed at:\n%s",
                         self.name, _format_stack(entry))
        elif "leak" not in self._warned:
            self._warned.add("leak")
            _log.warning("otel_memory: pool %r: a borrowed object was never returned and was "
                         "reclaimed by the garbage collector (set leak_detection_threshold to "
                         "log the borrower's stack)", self.name)

    def _after_fork_in_child(self) -> None:
        # The parent's objects (sockets, connections) are forgotten, never closed: closing
        # them here would shut the parent's connections too. Handles lent before the fork
        # belong to an old generation; returning them only drops them.
        housekeeping._after_fork_in_child()
        self.core.after_fork_in_child()
        self._after_fork_extra()
        housekeeping.register(self)

    def _after_fork_extra(self) -> None:
        """Front-end specific per-process state."""

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.warning(message, *args)

    # --- front-end specific ----------------------------------------------------------------

    def _destroy_entries(self, entries: list[Entry[T]]) -> None:
        raise NotImplementedError

    def _process_reclaimed(self) -> None:
        raise NotImplementedError

    def _refill(self) -> None:
        raise NotImplementedError


class Lender(Protocol[T]):
    """What a borrow handle (``Pooled``, ``Borrow``) may do with its ObjectPool, and nothing more:
    the pool's narrow interface to its handles (``handle.py``), so that handles never reach into
    a pool's private parts and the pool modules need not be imported by them.

    Example::

        def give_back(pool: Lender[T], entry: Entry[T]) -> None:
            if not pool.fast_return or not pool.core.give_back_fast(entry):
                pool.take_back(entry)
    """

    core: PoolCore[T]
    fast_take: bool
    fast_return: bool

    @property
    def name(self) -> str:
        """The pool's name."""

    def lend_entry(self, timeout: float | None) -> Entry[T]:
        """An idle or new entry, waiting up to ``timeout``."""

    def take_back(self, entry: Entry[T]) -> None:
        """Return ``entry`` (checked, reset, or destroyed as the options say)."""

    def destroy_object(self, obj: T) -> None:
        """Destroy an object the pool no longer holds."""

    def discard_entry(self, entry: Entry[T]) -> None:
        """Destroy a broken entry; a new one is made when needed."""

    def reclaim_entry(self, entry: Entry[T]) -> None:
        """Queue the entry of a handle the garbage collector reclaimed (takes no lock)."""


class AsyncLender(Protocol[T]):
    """What a borrow handle (``AsyncPooled``, ``AsyncBorrow``) may do with its AsyncObjectPool.

    Example::

        async def give_back(pool: AsyncLender[T], entry: Entry[T]) -> None:
            await pool.take_back(entry)
    """

    core: PoolCore[T]
    fast_take: bool
    fast_return: bool

    @property
    def name(self) -> str:
        """The pool's name."""

    async def lend_entry(self, timeout: float | None) -> Entry[T]:
        """An idle or new entry, waiting up to ``timeout``."""

    async def take_back(self, entry: Entry[T]) -> None:
        """Return ``entry`` (checked, reset, or destroyed as the options say)."""

    async def destroy_object(self, obj: T) -> None:
        """Destroy an object the pool no longer holds."""

    async def discard_entry(self, entry: Entry[T]) -> None:
        """Destroy a broken entry; a new one is made when needed."""

    def reclaim_entry(self, entry: Entry[T]) -> None:
        """Queue the entry of a handle the garbage collector reclaimed (takes no lock)."""


def _format_stack(entry: Entry[Any]) -> str:
    if entry.stack is None:
        return "  (stack not recorded)"
    return "".join(entry.stack.format()).rstrip()
