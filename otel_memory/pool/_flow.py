"""The borrow and return protocols of ObjectPool and AsyncObjectPool, written once.

Each protocol is a generator that keeps the books through ``PoolCore`` and yields a step
whenever user code must run or the borrower must wait: ``(WAIT, (waiter, deadline))``,
``(CREATE, None)``, ``(CHECK, entry)``, ``(RESET, entry)``, ``(DESTROY, objects)``. The sync
pool carries a step out by calling the hook or parking on a lock (``run``), the asyncio pool
by awaiting it (``run_async``). Whatever a step raises is thrown back into the generator, so
the cleanup after a failing hook or an interruption (KeyboardInterrupt, task cancellation)
is written once as well, and the two pools cannot drift apart.

Example::

    def lend_entry(self, timeout):                      # ObjectPool
        return run(acquire(self, timeout, _ThreadWaiter), self._carry_out)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError, PoolClosed, PoolTimeout
from ..errors import describe_value as describe
from ._core import REASON_HEALTH_CHECK, Entry, PoolCore, T, Waiter, _Create

if TYPE_CHECKING:
    from ._base import PoolBase

_log = logging.getLogger("otel_memory")

WAIT = "wait"
CREATE = "create"
CHECK = "check"
RESET = "reset"
DESTROY = "destroy"

R = TypeVar("R")
Step = tuple[str, Any]
Flow = Generator[Step, Any, R]


def run(flow: Flow[R], carry_out: Callable[[str, Any], Any]) -> R:
    """Drive ``flow`` to its end, carrying its steps out synchronously."""
    reply: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            step, argument = flow.send(reply) if thrown is None else flow.throw(thrown)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        thrown = None
        try:
            reply = carry_out(step, argument)
        except BaseException as error:  # noqa: BLE001 - thrown into the flow, which decides
            thrown = error


async def run_async(flow: Flow[R], carry_out: Callable[[str, Any], Awaitable[Any]]) -> R:
    """``run`` for the asyncio pool: each step is awaited."""
    reply: Any = None
    thrown: BaseException | None = None
    while True:
        try:
            step, argument = flow.send(reply) if thrown is None else flow.throw(thrown)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        thrown = None
        try:
            reply = await carry_out(step, argument)
        except BaseException as error:  # noqa: BLE001 - thrown into the flow, which decides
            thrown = error


def acquire(pool: PoolBase[T], timeout: float | None,
            make_waiter: Callable[[], Waiter[T]]) -> Flow[Entry[T]]:
    """Lend an entry: idle, newly created or handed over by a returning borrower."""
    core = pool.core
    start = time.perf_counter() if pool._time_borrows else 0.0
    if timeout is None:
        timeout = pool.options.timeout
    elif (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout)
          or timeout < 0):
        raise ConfigError(f"pool {pool.name!r}: timeout={describe(timeout)} is not valid: expected "
                          "None or a number of seconds >= 0 (math.inf: wait as long as it takes)")
    elif timeout >= threading.TIMEOUT_MAX:
        timeout = None   # math.inf or centuries: no limit (no lock can wait longer than TIMEOUT_MAX)
    waited_since = 0.0
    deadline: float | None = None
    while True:
        retired: list[Entry[T]] = []
        with core.lock:
            got = core.take_locked(make_waiter, retired)
        if retired:
            try:
                yield DESTROY, [entry.obj for entry in retired]
            except BaseException:
                with core.lock:
                    _undo_take_locked(core, got)
                raise
        if isinstance(got, Waiter):
            if not waited_since:
                waited_since = time.perf_counter()
                deadline = None if timeout is None else time.monotonic() + timeout
            got = yield from _wait(pool, got, deadline, timeout)
        if isinstance(got, _Create):
            entry = yield from _create(pool)
            break
        if pool._health_check is None:
            entry = got
            break
        try:
            healthy = yield from _hook(pool, CHECK, got)
        except BaseException:  # interrupted mid-check: the object goes back, the borrow never was
            with core.lock:
                core.unlend_locked(got)
            raise
        if healthy:
            entry = got
            break
        yield from destroy_lent(core, got, REASON_HEALTH_CHECK, unlend=True)
    if waited_since:
        pool._recorder.record_wait(time.perf_counter() - waited_since)
    if pool._time_borrows:
        pool._recorder.record_db_wait(time.perf_counter() - start)
    if core.tracks_leaks:
        core.note_borrower(entry)
    return entry


def _wait(pool: PoolBase[T], waiter: Waiter[T], deadline: float | None,
          timeout: float | None) -> Flow[Entry[T] | _Create]:
    core = pool.core
    try:
        yield WAIT, (waiter, deadline)
        with core.lock:
            got = core.resolve_wait_locked(waiter, timed_out=True)
    except BaseException:
        with core.lock:
            core.cancel_wait_locked(waiter)
        raise
    if got is None:
        raise PoolTimeout(f"pool {pool.name!r}: no object became free within {timeout} s "
                          f"(max_size={pool.max_size})")
    return got


def _undo_take_locked(core: PoolCore[T], got: Entry[T] | _Create | Waiter[T]) -> None:
    """Give back what ``take_locked`` handed out to a borrower that was interrupted."""
    if isinstance(got, Waiter):
        core.cancel_wait_locked(got)
    elif isinstance(got, _Create):
        core.create_failed_locked(count=False)
    else:
        core.unlend_locked(got)


def _create(pool: PoolBase[T]) -> Flow[Entry[T]]:
    """Call the factory in the slot already reserved; the new object is lent to the caller."""
    core = pool.core
    began = time.perf_counter()
    running, token = core.in_hooks, object()
    running[token] = (CREATE, time.monotonic())
    try:
        obj = yield CREATE, None
    except BaseException as error:  # factory errors reach the caller; interruptions are no error
        with core.lock:
            core.create_failed_locked(count=isinstance(error, Exception))
        raise
    finally:
        running.pop(token, None)
    pool._recorder.record_create(time.perf_counter() - began)
    try:
        with core.lock:
            return core.created_locked(obj)
    except PoolClosed:
        yield DESTROY, [obj]
        raise


def _hook(pool: PoolBase[T], step: str, entry: Entry[T]) -> Flow[bool]:
    """A health check or reset: False when it failed or raised (the object is broken).

    While it runs it is listed in ``in_hooks``, where housekeeping finds a hook that hangs.
    """
    running = pool.core.in_hooks
    running[entry] = (step, time.monotonic())
    try:
        result = yield step, entry
    except Exception as error:  # noqa: BLE001 - a raising hook means a broken object
        _log.debug("otel_memory: pool %r %s raised %s", pool.name, step, type(error).__name__)
        return False
    finally:
        running.pop(entry, None)
    return step == RESET or bool(result)


def give_back(pool: PoolBase[T], entry: Entry[T]) -> Flow[None]:
    """Take a lent entry back: reset, check on return, then idle or to the first waiter."""
    core = pool.core
    if entry.generation != core.generation:
        core.orphan(entry)
        return
    for step, wanted in ((RESET, pool._reset is not None), (CHECK, pool.options.check_on_return)):
        if not wanted:
            continue
        try:
            usable = yield from _hook(pool, step, entry)
        except BaseException:  # interrupted mid-hook: the object's state is unknown
            yield from destroy_lent(core, entry, REASON_HEALTH_CHECK)
            raise
        if not usable:
            yield from destroy_lent(core, entry, REASON_HEALTH_CHECK)
            return
    if pool._time_borrows and entry.borrowed_at:
        pool._recorder.record_use(time.monotonic() - entry.borrowed_at)
    with core.lock:
        kept = core.give_back_locked(entry)
    if not kept:
        yield DESTROY, [entry.obj]


def destroy_lent(core: PoolCore[T], entry: Entry[T], reason: str, *, unlend: bool = False
                 ) -> Flow[None]:
    """Destroy a lent object (discarded, failed check or reset); its slot is free again."""
    with core.lock:
        mine = core.destroy_borrowed_locked(entry, reason, unlend=unlend)
    if mine:
        yield DESTROY, [entry.obj]


def give_back_reclaimed(pool: PoolBase[T]) -> Flow[None]:
    """Take back the entries of handles the garbage collector reclaimed (leaked borrows)."""
    core = pool.core
    reclaimed = core.reclaimed
    while reclaimed:
        try:
            entry = reclaimed.popleft()
        except IndexError:
            return
        if entry.generation != core.generation:
            core.orphan(entry)
            continue
        pool._count_leak(entry)
        yield from give_back(pool, entry)


def refill(pool: PoolBase[T]) -> Flow[None]:
    """Create idle objects up to min_idle; a factory error is counted, warned once, retried later."""
    core = pool.core
    while True:
        with core.lock:
            if not core.reserve_for_idle_locked():
                return
        began = time.perf_counter()
        try:
            obj = yield CREATE, None
        except BaseException as error:
            with core.lock:
                core.create_failed_locked(count=isinstance(error, Exception))
            if not isinstance(error, Exception):
                raise
            pool._warn_once("refill", "otel_memory: pool %r: creating min_idle objects failed: %s",
                            pool.name, type(error).__name__)
            return
        pool._recorder.record_create(time.perf_counter() - began)
        with core.lock:
            kept = core.created_idle_locked(obj)
        if not kept:
            yield DESTROY, [obj]
            return


__all__ = ["CHECK", "CREATE", "DESTROY", "RESET", "WAIT", "Flow", "acquire", "destroy_lent",
           "give_back", "give_back_reclaimed", "refill", "run", "run_async"]
