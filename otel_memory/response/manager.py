"""MemoryPressureManager: runs the pressure policy's actions as the level of a MemoryManager changes.

It reacts at once to each change of level (through ``on_pressure_change``) and again every
``interval_s`` while pressure persists, in one of two modes: the ``monitor_and_respond()``
coroutine for asyncio applications, or a daemon thread (``start()``/``stop()``) for the rest.
``respond()`` runs one round by hand. ``gc.collect()`` and ``malloc_trim`` run at most once
per ``config.gc_min_interval_s`` and only when ``enable_gc_pressure`` is on; every action is
counted by kind in ``memory.pressure.actions`` with the RSS it gave back in
``memory.pressure.reclaimed``. Admission control (rejecting work at CRITICAL) is
``MemoryManager.admit()``, used by the web middleware and the ``memory_guard`` decorator.

Example::

    pressure = MemoryPressureManager(manager)
    pressure.start()                                   # thread mode
    ...
    pressure.stop()

    asyncio.create_task(pressure.monitor_and_respond())   # asyncio mode
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import forking
from ..errors import error_summary
from ..pressure import MemoryPressure
from .actions import (
    CACHE_SHRINK,
    GC_COLLECT,
    MALLOC_TRIM,
    POOL_RELEASE,
    ActionResult,
    MallocTrim,
    RateLimiter,
    collect_garbage,
)
from .policy import PressurePolicy

if TYPE_CHECKING:
    from ..manager import MemoryManager

_log = logging.getLogger("otel_memory")


class MemoryPressureManager:
    """Applies a PressurePolicy to one MemoryManager; see the module docstring.

    Example::

        with MemoryPressureManager(manager, policy=PressurePolicy(moderate=())) as pressure:
            ...                                        # thread mode while inside
        pressure.respond()                             # one round now: [ActionResult, ...]
    """

    def __init__(self, memory_manager: MemoryManager, policy: PressurePolicy | None = None, *,
                 interval_s: float | None = None) -> None:
        if policy is not None and not isinstance(policy, PressurePolicy):
            raise TypeError(f"policy={type(policy).__name__} is not a PressurePolicy")
        self.memory_manager = memory_manager
        self.policy = policy or PressurePolicy()
        config = memory_manager.config
        if interval_s is None:
            interval_s = config.monitor_config.monitoring_interval_ms / 1000
        if not interval_s > 0:
            raise ValueError(f"interval_s={interval_s!r}; expected a number of seconds > 0")
        self.interval_s = float(interval_s)
        self._limiters = {kind: RateLimiter(config.gc_min_interval_s)
                          for kind in (GC_COLLECT, MALLOC_TRIM, CACHE_SHRINK, POOL_RELEASE)}
        self._trimmer = MallocTrim()
        self._round_lock = threading.Lock()
        self._last_level: MemoryPressure | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._remove_listener: Callable[[], None] | None = None
        self._async_wakers: set[Callable[[], None]] = set()
        self._warned: set[str] = set()

    # --- one round ------------------------------------------------------------------------

    def respond(self, level: MemoryPressure | None = None) -> list[ActionResult]:
        """Run the policy's actions for ``level`` (default: the manager's current level)."""
        manager = self.memory_manager
        if not manager.initialized:
            return []
        if level is None:
            level = manager.get_memory_pressure()
        results: list[ActionResult] = []
        with self._round_lock:
            changed = level != self._last_level
            self._last_level = level
            for action in self.policy.actions_for(level):
                try:
                    results.extend(self._run(action, level, changed))
                except Exception as error:  # noqa: BLE001 - one failing action must not stop the rest
                    if action not in self._warned:
                        self._warned.add(action)
                        _log.warning("otel_memory: pressure action %s failed: %s",
                                     action, error_summary(error))
        return results

    def _run(self, action: str, level: MemoryPressure, changed: bool) -> list[ActionResult]:
        manager = self.memory_manager
        if action in (GC_COLLECT, MALLOC_TRIM):
            if not manager.config.monitor_config.enable_gc_pressure:
                return []
            if action == MALLOC_TRIM and not self._trimmer.available:
                return []
            if not self._limiters[action].try_acquire():
                return []
            if action == GC_COLLECT:
                result: ActionResult | None = collect_garbage(self._read_rss)
                _log.info("Forced garbage collection due to memory pressure")
            else:
                result = self._trimmer.trim(self._read_rss)
            if result is None:
                return []
            manager.record_action(action, result.reclaimed_bytes)
            return [result]
        # Responders hear of every change of level from the manager itself; re-tell them only
        # while pressure persists, at most once per interval.
        if changed or not self._limiters[action].try_acquire():
            return []
        results = []
        # Under the manager's tick lock, and only while the level is still ``level``: a tick
        # that announced another level meanwhile must not be overtaken by this older one (a
        # cache told CRITICAL after LOW would refuse inserts until the next change).
        with manager._tick_lock:
            if manager.get_memory_pressure() != level:
                return []
            for responder in manager.responders():
                if getattr(responder, "pressure_action", None) != action:
                    continue
                before = self._read_rss()
                if responder.respond_to_pressure(level):
                    result = ActionResult(action, before, self._read_rss())
                    manager.record_action(action, result.reclaimed_bytes)
                    results.append(result)
        return results

    def _read_rss(self) -> int:
        return self.memory_manager.sampler.current(max_age_s=0.0).rss or 0

    # --- wake-ups on level changes ---------------------------------------------------------

    def _listen(self) -> None:
        if self._remove_listener is None:
            ref = weakref.ref(self)

            def on_change(_level: MemoryPressure, _previous: MemoryPressure) -> None:
                owner = ref()
                if owner is not None:
                    owner._wake_all()

            self._remove_listener = self.memory_manager.on_pressure_change(on_change)

    def _unlisten(self) -> None:
        if self._remove_listener is not None and self._thread is None and not self._async_wakers:
            self._remove_listener()
            self._remove_listener = None

    def _wake_all(self) -> None:
        self._wake.set()
        for waker in list(self._async_wakers):
            waker()

    # --- asyncio mode -----------------------------------------------------------------------

    async def monitor_and_respond(self) -> None:
        """Respond every ``interval_s`` and at each change of level until cancelled or stop().

        The actions run on the event loop: a forced ``gc.collect()`` pauses it for as long as
        the collection takes (rate-limited to once per ``gc_min_interval_s``).
        """
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def waker() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(wake.set)

        self._async_wakers.add(waker)
        self._listen()
        self._stop.clear()
        try:
            while not self._stop.is_set():
                wake.clear()
                self.respond()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.interval_s)
        finally:
            self._async_wakers.discard(waker)
            self._unlisten()

    # --- thread mode ------------------------------------------------------------------------

    def start(self) -> None:
        """Respond in a daemon thread (idempotent); the thread holds only a weakref to self."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._listen()
        self._thread = threading.Thread(
            target=_respond_loop, args=(weakref.ref(self), self._stop, self._wake, self.interval_s),
            name="otel-memory-pressure", daemon=True)
        self._thread.start()
        forking.after_fork_in_child(self)

    def stop(self) -> None:
        """Stop the thread and the coroutine; the manager keeps running."""
        self._stop.set()
        self._wake_all()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self._unlisten()
        forking.forget(self)

    @property
    def running(self) -> bool:
        """True while the thread mode runs."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> MemoryPressureManager:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _after_fork_in_child(self) -> None:
        self._round_lock = threading.Lock()
        self._last_level = None
        for limiter in self._limiters.values():
            limiter.reset()
        if self._thread is not None:
            self._thread = None
            self._wake = threading.Event()
            self.start()


def _respond_loop(ref: weakref.ref[MemoryPressureManager], stop: threading.Event,
                  wake: threading.Event, interval: float) -> None:
    failed = False
    while not stop.is_set():
        owner = ref()
        if owner is None or not owner.memory_manager.initialized:
            return
        wake.clear()
        try:
            owner.respond()
        except Exception as error:  # noqa: BLE001 - the thread must outlive one bad round
            if not failed:
                failed = True
                _log.warning("otel_memory: pressure response round failed: %s", error_summary(error))
        del owner
        wake.wait(interval)
