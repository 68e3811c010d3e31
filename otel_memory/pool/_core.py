"""The pool state machine shared by ObjectPool and AsyncObjectPool.

``PoolCore`` owns everything both pools must agree on: the idle stack, the slot accounting,
the first-come first-served waiter queue with direct hand-off, retirement by lifetime and idle
time, pressure release, fork handling and the plain integer counters the metrics export. It
never calls user code (factory, health check, reset, destroy) and never blocks except on its
own short lock: it *decides*, and the sync and asyncio front ends carry the decisions out.

Invariant, under ``lock``: ``slots == len(idle) + borrowed + creating``.

Example::

    core = PoolCore(PoolOptions.validate("buffers", 4))
    with core.lock:
        decision = core.take_locked(make_waiter, retired)   # an Entry, CREATE or a waiter
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..errors import PoolClosed, PoolExhausted
from ._options import (
    DESTROY_REASONS,
    REASON_CLOSED,
    REASON_DISCARDED,
    REASON_HEALTH_CHECK,
    REASON_IDLE_TIMEOUT,
    REASON_MAX_LIFETIME,
    REASON_PRESSURE,
    PoolOptions,
    PoolStats,
)

T = TypeVar("T")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

class _Create:
    """The decision "you hold a free slot: call the factory"."""

    def __repr__(self) -> str:
        return "CREATE"


CREATE = _Create()


class Entry(Generic[T]):
    """One pooled object and its bookkeeping (creation, last use, borrower, fork generation).

    Example::

        entry = Entry(bytearray(16), created=time.monotonic(), generation=core.generation)
    """

    __slots__ = ("borrowed_at", "created", "generation", "last_used", "leak_warned", "obj", "stack")

    def __init__(self, obj: T, created: float, generation: int) -> None:
        self.obj = obj
        self.created = created
        self.last_used = created
        self.generation = generation
        self.borrowed_at = 0.0
        self.stack: traceback.StackSummary | None = None
        self.leak_warned = False


class Waiter(Generic[T]):
    """A borrower queued for an object; subclasses know how to wake their borrower.

    Example::

        class ThreadWaiter(Waiter[T]):
            def wake(self) -> None:
                self.parked.release()
    """

    __slots__ = ("closed", "create", "entry")

    def __init__(self) -> None:
        self.entry: Entry[T] | None = None
        self.create = False
        self.closed = False

    def wake(self) -> None:
        """Called under the core lock once entry, create or closed is set."""
        raise NotImplementedError


class PoolCore(Generic[T]):
    """Slots, idle objects, waiters and counters of one pool; see the module docstring.

    Example::

        core = PoolCore(PoolOptions.validate("parsers", 2))
        core.stats().size   # 0
    """

    def __init__(self, options: PoolOptions) -> None:
        self.options = options
        self.name = options.name
        self.max_size = options.max_size
        self.timed = options.max_lifetime is not None or options.idle_timeout is not None
        self.tracks_leaks = options.leak_detection_threshold is not None
        self.stamps = self.timed or self.tracks_leaks or options.measure_use_time
        self.reclaimed: deque[Entry[T]] = deque()
        self.orphans: list[Any] = []
        self._reset_state()

    def _reset_state(self) -> None:
        self.lock = threading.Lock()
        self.idle: deque[Entry[T]] = deque()
        self.waiters: deque[Waiter[T]] = deque()
        self.lent: set[Entry[T]] = set()
        self.slots = 0
        self.borrowed = 0
        self.creating = 0
        self.closed = False
        self.generation = getattr(self, "generation", 0) + 1
        self.borrows = 0
        self.timeouts = 0
        self.rejections = 0
        self.created = 0
        self.create_errors = 0
        self.leaked = 0
        self.destroyed = dict.fromkeys(DESTROY_REASONS, 0)
        self.reclaimed.clear()
        # user hooks running now (entry or token -> (step, monotonic start)), for the hang watch
        self.in_hooks: dict[object, tuple[str, float]] = {}

    def after_fork_in_child(self) -> None:
        """Forget the parent's objects without closing them: they share the parent's sockets.

        They are kept referenced (``orphans``) so that no finalizer ever runs on them in the
        child: a database connection's finalizer would say goodbye to the server on the
        parent's socket and end the parent's session.
        """
        self.orphans.extend(entry.obj for entry in self.idle)
        self.orphans.extend(entry.obj for entry in self.lent)
        closed = self.closed
        self._reset_state()
        self.closed = closed    # a pool closed before the fork stays closed in the child

    def orphan(self, entry: Entry[T]) -> None:
        """A pre-fork object came back in the child: keep it alive, unused, never destroyed."""
        self.orphans.append(entry.obj)

    # --- the hot path: plain borrow and return, no hooks, no timing ---------------------------

    def take_fast(self) -> Entry[T] | None:
        """The most recently returned idle object, or None (use take_locked)."""
        with self.lock:
            return self.take_fast_unlocked()

    def take_fast_unlocked(self) -> Entry[T] | None:
        """``take_fast`` for callers that serialise otherwise (the asyncio pool's loop)."""
        if self.idle:
            entry = self.idle.pop()
            self.borrowed += 1
            self.borrows += 1
            return entry
        return None

    def give_back_fast(self, entry: Entry[T]) -> bool:
        """Return a lent object; False when the caller must destroy it (pool closed)."""
        with self.lock:
            return self.give_back_fast_unlocked(entry)

    def give_back_fast_unlocked(self, entry: Entry[T]) -> bool:
        """``give_back_fast`` for callers that serialise otherwise (the asyncio pool's loop)."""
        if entry.generation != self.generation:
            self.orphan(entry)
            return True
        self.borrowed -= 1
        if self.closed:
            self.slots -= 1
            self.destroyed[REASON_CLOSED] += 1
            return False
        if self.waiters:
            self._dispatch_locked(entry)
        else:
            self.idle.append(entry)
        return True

    # --- decisions, all called with ``lock`` held ------------------------------------------

    def take_locked(self, make_waiter: Callable[[], Waiter[T]],
                    retired: list[Entry[T]]) -> Entry[T] | _Create | Waiter[T]:
        """An idle object, CREATE (a slot was reserved) or a queued waiter.

        Expired idle objects met on the way are appended to ``retired`` for the caller to destroy.
        Raises PoolClosed, or PoolExhausted when max_waiting borrowers already wait.
        """
        if self.closed:
            raise PoolClosed(f"pool {self.name!r} is closed")
        idle = self.idle
        while idle:
            entry = idle.pop()
            if self.timed and self._retire_locked(entry, time.monotonic(), retired):
                continue
            self._lend_locked(entry)
            return entry
        if self.slots < self.max_size:
            self.slots += 1
            self.creating += 1
            return CREATE
        max_waiting = self.options.max_waiting
        if max_waiting is not None and len(self.waiters) >= max_waiting:
            self.rejections += 1
            raise PoolExhausted(f"pool {self.name!r} is exhausted: all {self.max_size} objects are "
                                f"lent and {len(self.waiters)} borrowers already wait "
                                f"(max_waiting={max_waiting})")
        waiter = make_waiter()
        self.waiters.append(waiter)
        return waiter

    def _lend_locked(self, entry: Entry[T]) -> None:
        self.borrowed += 1
        self.borrows += 1
        if self.stamps:
            entry.borrowed_at = time.monotonic()
            if self.tracks_leaks:
                entry.stack = None
                entry.leak_warned = False
                self.lent.add(entry)

    def _retire_locked(self, entry: Entry[T], now: float, retired: list[Entry[T]]) -> bool:
        """Drop an idle entry past max_lifetime or idle_timeout; True when it was dropped."""
        lifetime, idle_timeout = self.options.max_lifetime, self.options.idle_timeout
        if lifetime is not None and now - entry.created >= lifetime:
            reason = REASON_MAX_LIFETIME
        elif idle_timeout is not None and now - entry.last_used >= idle_timeout:
            reason = REASON_IDLE_TIMEOUT
        else:
            return False
        self.slots -= 1
        self.destroyed[reason] += 1
        retired.append(entry)
        return True

    def reserve_for_idle_locked(self) -> bool:
        """Reserve a slot to top the idle objects up to min_idle; False when none is needed."""
        if (self.closed or self.slots >= self.max_size
                or len(self.idle) + self.creating >= self.options.min_idle):
            return False
        self.slots += 1
        self.creating += 1
        return True

    def created_idle_locked(self, obj: T) -> bool:
        """An object made by ``reserve_for_idle_locked``'s slot; False: closed, destroy it."""
        self.creating -= 1
        self.created += 1
        if self.closed:
            self.slots -= 1
            self.destroyed[REASON_CLOSED] += 1
            return False
        self._dispatch_locked(Entry(obj, time.monotonic(), self.generation))
        return True

    def created_locked(self, obj: T) -> Entry[T]:
        """The factory made ``obj`` in a reserved slot: it is lent to the creator."""
        self.creating -= 1
        self.created += 1
        entry = Entry(obj, time.monotonic() if self.stamps else 0.0, self.generation)
        if self.closed:
            self.slots -= 1
            self.destroyed[REASON_CLOSED] += 1
            raise PoolClosed(f"pool {self.name!r} was closed while an object was created")
        self._lend_locked(entry)
        return entry

    def note_borrower(self, entry: Entry[T]) -> None:
        """Remember the borrower's stack for leak reports (leak detection only; not hot)."""
        entry.stack = traceback.StackSummary.from_list(
            [frame for frame in traceback.extract_stack() if _PACKAGE_DIR not in frame.filename])

    def create_failed_locked(self, *, count: bool = True) -> None:
        """The factory raised: give the reserved slot to the next waiter, if any."""
        self.creating -= 1
        self.create_errors += count
        self.slots -= 1
        self._grant_slots_locked()

    def destroy_borrowed_locked(self, entry: Entry[T], reason: str, *, unlend: bool = False) -> bool:
        """A lent object is destroyed (discard, failed check, reset error, lifetime).

        ``unlend``: it failed its health check on borrow, so the borrow does not count.
        False when the entry belongs to a pre-fork generation and must be left alone.
        """
        if entry.generation != self.generation:
            self.orphan(entry)
            return False
        self.borrows -= unlend
        self.borrowed -= 1
        self.lent.discard(entry)
        self.slots -= 1
        self.destroyed[reason] += 1
        self._grant_slots_locked()
        return True

    def give_back_locked(self, entry: Entry[T]) -> bool:
        """Return a healthy lent object; False when the caller must destroy it (closed, expired)."""
        if entry.generation != self.generation:
            self.orphan(entry)  # a parent's object: keep it away, never close it in the child
            return True
        if self.closed:
            self.borrowed -= 1
            self.lent.discard(entry)
            self.slots -= 1
            self.destroyed[REASON_CLOSED] += 1
            return False
        if self.stamps:
            now = time.monotonic()
            entry.last_used = now
            lifetime = self.options.max_lifetime
            if lifetime is not None and now - entry.created >= lifetime:
                self.destroy_borrowed_locked(entry, REASON_MAX_LIFETIME)
                return False
        self.borrowed -= 1
        self.lent.discard(entry)
        self._dispatch_locked(entry)
        return True

    def _dispatch_locked(self, entry: Entry[T]) -> None:
        """Hand an unlent object to the first waiter, else put it on the idle stack."""
        if self.waiters:
            waiter = self.waiters.popleft()
            self._lend_locked(entry)
            waiter.entry = entry
            waiter.wake()
        else:
            self.idle.append(entry)

    def _grant_slots_locked(self) -> None:
        while self.waiters and self.slots < self.max_size and not self.closed:
            waiter = self.waiters.popleft()
            self.slots += 1
            self.creating += 1
            waiter.create = True
            waiter.wake()

    def resolve_wait_locked(self, waiter: Waiter[T], *, timed_out: bool) -> Entry[T] | _Create | None:
        """A waiter stops waiting (timeout or cancel): what it was given, or None (dequeued)."""
        if waiter.entry is not None:
            return waiter.entry
        if waiter.create:
            return CREATE
        if waiter.closed:
            raise PoolClosed(f"pool {self.name!r} was closed while waiting")
        with contextlib.suppress(ValueError):
            self.waiters.remove(waiter)
        if timed_out:
            self.timeouts += 1
        return None

    def cancel_wait_locked(self, waiter: Waiter[T]) -> None:
        """A waiter was cancelled or interrupted: dequeue it, or pass on what it was given."""
        if waiter.entry is not None:
            entry, waiter.entry = waiter.entry, None
            self.unlend_locked(entry)
        elif waiter.create:
            waiter.create = False
            self.creating -= 1
            self.slots -= 1
            self._grant_slots_locked()
        elif not waiter.closed:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def unlend_locked(self, entry: Entry[T]) -> None:
        """A lent entry goes back unused (its borrower was interrupted): the borrow never was."""
        self.borrowed -= 1
        self.borrows -= 1
        self.lent.discard(entry)
        self._dispatch_locked(entry)

    def close_locked(self) -> list[Entry[T]]:
        """Refuse new borrows, wake waiters with PoolClosed; the idle objects to destroy."""
        self.closed = True
        drained = list(self.idle)
        self.idle.clear()
        self.slots -= len(drained)
        self.destroyed[REASON_CLOSED] += len(drained)
        while self.waiters:
            waiter = self.waiters.popleft()
            waiter.closed = True
            waiter.wake()
        return drained

    def release_idle_locked(self, keep: int, reason: str) -> list[Entry[T]]:
        """Take idle objects above ``keep``, least recently used first."""
        released: list[Entry[T]] = []
        while len(self.idle) > keep:
            released.append(self.idle.popleft())
        self.slots -= len(released)
        self.destroyed[reason] += len(released)
        return released

    def retire_idle_locked(self) -> list[Entry[T]]:
        """Idle objects past max_lifetime, or idle past idle_timeout above min_idle."""
        retired: list[Entry[T]] = []
        if not self.timed or not self.idle:
            return retired
        now = time.monotonic()
        keep: deque[Entry[T]] = deque()
        lifetime, idle_timeout = self.options.max_lifetime, self.options.idle_timeout
        # oldest-used first, so idle_timeout retires the coldest objects above min_idle
        for entry in self.idle:
            if lifetime is not None and now - entry.created >= lifetime:
                self.destroyed[REASON_MAX_LIFETIME] += 1
                retired.append(entry)
            elif (idle_timeout is not None and now - entry.last_used >= idle_timeout
                  and self.slots - len(retired) > self.options.min_idle):
                self.destroyed[REASON_IDLE_TIMEOUT] += 1
                retired.append(entry)
            else:
                keep.append(entry)
        self.idle = keep
        self.slots -= len(retired)
        return retired

    def overdue_locked(self) -> list[Entry[T]]:
        """Lent entries held past leak_detection_threshold not yet warned about."""
        threshold = self.options.leak_detection_threshold
        if threshold is None or not self.lent:
            return []
        now = time.monotonic()
        overdue = [e for e in self.lent if not e.leak_warned and now - e.borrowed_at >= threshold]
        for entry in overdue:
            entry.leak_warned = True
        return overdue

    def stats_locked(self) -> PoolStats:
        """A consistent snapshot of the counters.

        ``idle`` is derived as ``size - borrowed`` rather than read as ``len(idle)``: the asyncio
        pool's hot path updates the idle stack and ``borrowed`` without this lock (its loop
        serialises it), and a reader on another thread may fall between the two updates;
        deriving keeps size == idle + borrowed in every snapshot. Under the lock both agree.
        """
        size = self.slots - self.creating
        borrowed = self.borrowed
        return PoolStats(
            name=self.name, size=size, idle=size - borrowed, borrowed=borrowed,
            max_size=self.max_size, min_idle=self.options.min_idle,
            pending_requests=len(self.waiters), borrows=self.borrows, timeouts=self.timeouts,
            rejections=self.rejections, created=self.created, create_errors=self.create_errors,
            destroyed=tuple(self.destroyed.items()), leaked_borrows=self.leaked,
            max_idle=self.max_size)

    def stats(self) -> PoolStats:
        """``stats_locked`` taking the lock."""
        with self.lock:
            return self.stats_locked()


__all__ = ["CREATE", "DESTROY_REASONS", "REASON_CLOSED", "REASON_DISCARDED", "REASON_HEALTH_CHECK",
           "REASON_IDLE_TIMEOUT", "REASON_MAX_LIFETIME", "REASON_PRESSURE", "Entry", "PoolCore",
           "PoolOptions", "PoolStats", "Waiter"]
