"""ObjectPool: borrowing, exhaustion, health, retirement, close, pressure, leaks, fork."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.errors import ConfigError, PoolClosed, PoolExhausted, PoolTimeout
from otel_memory.manager import MemoryManager
from otel_memory.pool import ObjectPool, Pooled
from otel_memory.pool import _housekeeping as housekeeping
from otel_memory.pressure import MemoryPressure


class Thing:
    """A pooled object that remembers what happened to it."""

    serial = 0

    def __init__(self) -> None:
        Thing.serial += 1
        self.serial = Thing.serial
        self.healthy = True
        self.resets = 0
        self.destroyed = False


def make_pool(meter_provider: MeterProvider, max_size: int = 2, **options: Any
              ) -> tuple[ObjectPool[Thing], list[Thing]]:
    made: list[Thing] = []

    def factory() -> Thing:
        thing = Thing()
        made.append(thing)
        return thing

    def destroy(thing: Thing) -> None:
        thing.destroyed = True

    options.setdefault("destroy", destroy)
    options.setdefault("timeout", 0.2)
    return ObjectPool("things", factory, max_size, meter_provider=meter_provider, **options), made


def in_thread(results: list[object], call: Callable[..., object], **kwargs: Any) -> threading.Thread:
    """Run ``call(**kwargs)`` in a thread; its result or exception lands in ``results``."""

    def run() -> None:
        try:
            results.append(call(**kwargs))
        except BaseException as error:  # noqa: BLE001 - reported to the test
            results.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_borrow_returns_the_object_also_on_exception(meter_provider: MeterProvider) -> None:
    pool, made = make_pool(meter_provider)
    with pytest.raises(ZeroDivisionError), pool.borrow() as thing:
        first = thing
        _ = 1 / 0
    with pool.borrow() as thing:
        assert thing is first
    stats = pool.stats()
    assert (stats.size, stats.idle, stats.borrowed, stats.borrows, stats.created) == (1, 1, 0, 2, 1)
    assert len(made) == 1


def test_handle_release_discard_and_reuse(meter_provider: MeterProvider) -> None:
    pool, made = make_pool(meter_provider)
    handle = pool.acquire()
    assert isinstance(handle, Pooled)
    thing = handle.get()
    handle.release()
    handle.release()  # idempotent
    assert handle.released
    with pytest.raises(RuntimeError, match="already released"):
        handle.get()
    with pool.acquire() as again:
        assert again.get() is thing
    broken = pool.acquire()
    broken.discard()
    assert thing.destroyed
    assert pool.stats().destroyed_by("discarded") == 1
    assert pool.stats().size == 0
    with pool.borrow() as fresh:
        assert fresh is not thing
    assert len(made) == 2


def test_timeout_and_max_waiting(meter_provider: MeterProvider) -> None:
    pool, _ = make_pool(meter_provider, max_size=1, max_waiting=1)
    held = pool.acquire()
    began = time.monotonic()
    with pytest.raises(PoolTimeout, match=r"'things'.*0\.05 s"):
        pool.acquire(timeout=0.05)
    assert time.monotonic() - began >= 0.05
    outcomes: list[object] = []
    waiting = in_thread(outcomes, pool.acquire, timeout=1.0)  # still waiting when we check
    wait_until(lambda: pool.stats().pending_requests == 1)
    with pytest.raises(PoolExhausted, match="max_waiting=1"):
        pool.acquire(timeout=5.0)
    waiting.join()
    assert isinstance(outcomes[0], PoolTimeout)
    stats = pool.stats()
    assert (stats.timeouts, stats.rejections, stats.pending_requests) == (2, 1, 0)
    held.release()


def test_waiters_are_served_first_come_first_served(meter_provider: MeterProvider) -> None:
    pool, _ = make_pool(meter_provider, max_size=1, timeout=5.0)
    held = pool.acquire()
    order: list[int] = []

    def borrower(number: int) -> None:
        with pool.borrow():
            order.append(number)

    threads = []
    for number in range(5):
        thread = threading.Thread(target=borrower, args=(number,))
        thread.start()
        threads.append(thread)
        wait_until(lambda n=number: pool.stats().pending_requests == n + 1)
    held.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]


def test_closed_pool_refuses_and_destroys(meter_provider: MeterProvider) -> None:
    pool, made = make_pool(meter_provider, max_size=2, timeout=5.0)
    lent = pool.acquire()
    with pool.borrow():
        pass
    assert pool.stats().idle == 1
    pool.close()
    assert made[1].destroyed and not made[0].destroyed  # idle at once, lent on return
    with pytest.raises(PoolClosed, match="'things' is closed"):
        pool.acquire()
    lent.release()
    assert all(thing.destroyed for thing in made)
    stats = pool.stats()
    assert (stats.size, stats.destroyed_by("closed")) == (0, 2)


def test_close_wakes_waiters_with_pool_closed(meter_provider: MeterProvider) -> None:
    pool, _ = make_pool(meter_provider, max_size=1, timeout=5.0)
    held = pool.acquire()
    errors: list[object] = []
    thread = in_thread(errors, pool.acquire)
    wait_until(lambda: pool.stats().pending_requests == 1)
    began = time.monotonic()
    pool.close()
    thread.join()
    assert time.monotonic() - began < 2.0
    assert isinstance(errors[0], PoolClosed)
    held.release()
    assert pool.stats().destroyed_by("closed") == 1


def test_failing_health_check_destroys_and_replaces(meter_provider: MeterProvider) -> None:
    pool, _ = make_pool(meter_provider, health_check=lambda t: t.healthy)
    with pool.borrow() as thing:
        thing.healthy = False
    with pool.borrow() as other:
        assert other is not thing
    assert thing.destroyed

    def raising(_: Thing) -> bool:
        raise ConnectionError("gone")

    pool2, _ = make_pool(meter_provider, health_check=raising)
    with pool2.borrow() as first:
        pass
    with pool2.borrow() as second:
        assert second is not first  # a raising check counts as broken
    for p, expected in ((pool, 1), (pool2, 1)):
        stats = p.stats()
        assert stats.destroyed_by("health_check") == expected
        assert stats.borrows == 2  # the failed check is not a borrow


def test_reset_and_check_on_return(meter_provider: MeterProvider) -> None:
    def reset(thing: Thing) -> None:
        thing.resets += 1
        if not thing.healthy:
            raise OSError("cannot reset")

    pool, _ = make_pool(meter_provider, reset=reset)
    with pool.borrow() as thing:
        pass
    assert thing.resets == 1
    with pool.borrow() as thing:
        thing.healthy = False
    assert thing.destroyed
    assert pool.stats().destroyed_by("health_check") == 1

    checked, _ = make_pool(meter_provider, health_check=lambda t: t.healthy, check_on_return=True)
    with checked.borrow() as thing:
        thing.healthy = False
    assert thing.destroyed and checked.stats().idle == 0


def test_factory_errors_reach_the_caller_and_lose_no_slot(meter_provider: MeterProvider) -> None:
    calls = {"n": 0}

    def flaky() -> Thing:
        calls["n"] += 1
        if calls["n"] % 2:
            raise ConnectionRefusedError("refused")
        return Thing()

    pool = ObjectPool("flaky", flaky, 1, meter_provider=meter_provider, timeout=0.2)
    with pytest.raises(ConnectionRefusedError):
        pool.acquire()
    handle = pool.acquire()
    stats = pool.stats()
    assert (stats.create_errors, stats.created, stats.size) == (1, 1, 1)
    handle.discard()
    with pytest.raises(ConnectionRefusedError):
        pool.acquire()
    pool.acquire().release()


def test_factory_error_passes_the_slot_to_a_waiter(meter_provider: MeterProvider) -> None:
    gate = threading.Event()
    fail = {"now": True}

    def factory() -> Thing:
        if fail["now"]:
            gate.wait(5)
            fail["now"] = False
            raise TimeoutError("slow and failing")
        return Thing()

    pool = ObjectPool("slot", factory, 1, meter_provider=meter_provider, timeout=5.0)
    results: list[object] = []
    first = in_thread(results, pool.acquire)
    wait_until(lambda: pool.stats().size == 0 and pool.core.creating == 1)
    second_handle: list[object] = []
    second = in_thread(second_handle, pool.acquire)
    wait_until(lambda: pool.stats().pending_requests == 1)
    gate.set()
    first.join()
    second.join()
    assert isinstance(results[0], TimeoutError)
    handle = second_handle[0]
    assert isinstance(handle, Pooled) and isinstance(handle.get(), Thing)
    assert pool.stats().create_errors == 1


def test_max_lifetime_and_idle_timeout_retire_lazily(meter_provider: MeterProvider) -> None:
    pool, _ = make_pool(meter_provider, max_lifetime=0.2)
    with pool.borrow() as old:
        time.sleep(0.25)
    assert old.destroyed  # retired on return
    assert pool.stats().destroyed_by("max_lifetime") == 1

    idle, _ = make_pool(meter_provider, idle_timeout=0.1)
    with idle.borrow() as first:
        pass
    time.sleep(0.15)
    with idle.borrow() as second:
        assert second is not first  # retired on borrow
    assert first.destroyed
    assert idle.stats().destroyed_by("idle_timeout") >= 1


def test_housekeeping_thread_retires_idle_objects_and_keeps_min_idle(meter_provider: MeterProvider
                                                                     ) -> None:
    # all four lent at once: the housekeeping thread cannot top up min_idle meanwhile, and
    # idle_timeout is long enough that a stalled test thread does not see objects retired early
    pool, made = make_pool(meter_provider, max_size=4, min_idle=1, idle_timeout=0.5)
    assert housekeeping.running()
    wait_until(lambda: pool.stats().idle == 1)  # topped up to min_idle without a borrow
    handles = [pool.acquire() for _ in range(4)]
    for handle in handles:
        handle.release()
    assert pool.stats().idle == 4
    wait_until(lambda: pool.stats().idle == 1)  # above min_idle, idle too long
    assert pool.stats().destroyed_by("idle_timeout") == 3
    assert sum(thing.destroyed for thing in made) == 3 and len(made) == 4


def test_pressure_releases_idle_objects_above_min_idle(meter_provider: MeterProvider) -> None:
    pool, made = make_pool(meter_provider, max_size=4, min_idle=1)
    handles = [pool.acquire() for _ in range(4)]
    handles[0].release()
    handles[1].release()
    handles[2].release()
    assert pool.respond_to_pressure(MemoryPressure.MODERATE) is False
    assert pool.respond_to_pressure(MemoryPressure.HIGH) is True
    stats = pool.stats()
    assert (stats.idle, stats.borrowed, stats.destroyed_by("pressure")) == (1, 1, 2)
    assert pool.respond_to_pressure(MemoryPressure.CRITICAL) is False  # nothing above min_idle
    assert pool.pressure_action == "pool_release"
    assert sum(thing.destroyed for thing in made) == 2
    handles[3].release()


def test_manager_registry_and_pressure_responder(meter_provider: MeterProvider) -> None:
    manager = MemoryManager(MemoryManagementConfig(monitor_config=MemoryLimitConfig(max_heap_mb=4096)),
                            meter_provider=meter_provider)
    manager.initialize()
    try:
        pool = manager.create_pool("buffers", lambda: bytearray(1024), 1, timeout=0.05)
        assert pool in manager.responders()
        handle = manager.get_from_pool("buffers")
        assert isinstance(handle, Pooled)
        assert manager.get_from_pool("buffers", timeout=0.01) is None
        handle.release()
        assert pool.respond_to_pressure(MemoryPressure.HIGH) is True
    finally:
        manager.shutdown()
    assert pool.closed


def test_pool_is_weakly_referenced_and_collected(meter_provider: MeterProvider) -> None:
    import weakref

    pool, _ = make_pool(meter_provider)
    with pool.borrow():
        pass
    ref = weakref.ref(pool)
    del pool
    gc.collect()
    assert ref() is None  # neither metrics, housekeeping nor fork hooks keep it alive


def test_leaked_handle_is_reclaimed_counted_and_logged_with_the_stack(
        meter_provider: MeterProvider, caplog: pytest.LogCaptureFixture) -> None:
    pool, _ = make_pool(meter_provider, max_size=1, leak_detection_threshold=60.0, timeout=2.0)

    def leaky_borrower() -> None:
        pool.acquire()  # never released

    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        leaky_borrower()
        gc.collect()
        with pool.borrow():  # the slot came back
            pass
        wait_until(lambda: pool.stats().leaked_borrows == 1)
    messages = [r.getMessage() for r in caplog.records if "never returned" in r.getMessage()]
    assert messages and "leaky_borrower" in messages[0]


def test_borrow_held_past_the_threshold_is_reported(meter_provider: MeterProvider,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    pool, _ = make_pool(meter_provider, leak_detection_threshold=0.1)

    def slow_borrower() -> Pooled[Thing]:
        return pool.acquire()

    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        handle = slow_borrower()
        wait_until(lambda: any("borrowed for" in r.getMessage() for r in caplog.records))
        handle.release()
    report = next(r.getMessage() for r in caplog.records if "borrowed for" in r.getMessage())
    assert "slow_borrower" in report
    assert pool.stats().leaked_borrows == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_after_fork_drops_parent_objects_without_closing_them(meter_provider: MeterProvider
                                                                    ) -> None:
    pool, made = make_pool(meter_provider, max_size=3)
    lent = pool.acquire()
    with pool.borrow():
        pass
    with pool.borrow():
        pass
    assert pool.stats().idle == 1
    parents = {thing.serial for thing in made}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            before = pool.stats()
            with pool.borrow() as thing:
                fresh = thing.serial not in parents
            lent.release()  # a parent's object: forgotten, not pooled, not destroyed
            after = pool.stats()
            kept_alive = {id(obj) for obj in pool.core.orphans} == {id(made[0]), id(made[1])}
            ok = (before.size == 0 and before.idle == 0 and fresh and after.size == 1
                  and not any(t.destroyed for t in made[:2]) and kept_alive)
            os.write(write_end, b"ok" if ok else repr((before, after)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    report = os.read(read_end, 4096)
    os.close(read_end)
    assert status == 0 and report == b"ok", report
    assert pool.stats().idle == 1 and not any(t.destroyed for t in made)
    lent.release()


@pytest.mark.parametrize(("options", "message"), [
    ({"max_size": 0}, "max_size=0"),
    ({"max_size": 2, "min_idle": 3}, "min_idle=3"),
    ({"max_size": 2, "timeout": -1}, "timeout=-1"),
    ({"max_size": 2, "max_lifetime": 0}, "max_lifetime=0"),
    ({"max_size": 2, "max_waiting": -1}, "max_waiting=-1"),
])
def test_bad_options_name_the_option(options: dict[str, Any], message: str) -> None:
    max_size = options.pop("max_size")
    with pytest.raises(ConfigError, match=message):
        ObjectPool("bad", Thing, max_size, **options)


def test_works_with_the_global_meter_provider() -> None:
    pool = ObjectPool("global", Thing, 1)
    with pool.borrow() as thing:
        assert isinstance(thing, Thing)
    assert "global" in repr(pool) and "Thing" not in repr(pool)


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt or a timeout exception raised inside a hook."""


@pytest.mark.parametrize(("hook", "borrows", "destroyed"),
                         [("health_check", 2, 0), ("reset", 3, 1), ("check_on_return", 3, 1)])
def test_interrupted_hook_loses_no_slot_and_keeps_counts_exact(
        meter_provider: MeterProvider, hook: str, borrows: int, destroyed: int) -> None:
    """On borrow the object goes back unborrowed; on return its state is unknown: destroyed."""
    armed = {"now": False}

    def maybe_interrupt(thing: Thing) -> bool:
        if armed["now"]:
            armed["now"] = False
            raise Interrupted
        return True

    options: dict[str, Any] = ({"health_check": maybe_interrupt, "check_on_return": True}
                               if hook == "check_on_return" else {hook: maybe_interrupt})
    pool, made = make_pool(meter_provider, max_size=1, **options)
    with pool.borrow():
        pass
    handle = pool.acquire() if hook != "health_check" else None
    armed["now"] = True
    with pytest.raises(Interrupted):
        if handle is not None:
            handle.release()
        else:
            pool.acquire()
    stats = pool.stats()
    assert (stats.borrowed, stats.size, stats.destroyed_total) == (0, 1 - destroyed, destroyed)
    with pool.borrow(timeout=0.5):  # the only slot is free again
        pass
    stats = pool.stats()
    assert (stats.borrows, stats.created, stats.destroyed_by("health_check")) == (
        borrows, 1 + destroyed, destroyed)
    assert len(made) == 1 + destroyed and made[0].destroyed == bool(destroyed)


def test_child_after_fork_runs_one_housekeeping_thread_for_all_pools(meter_provider: MeterProvider
                                                                     ) -> None:
    pools = [make_pool(meter_provider, max_lifetime=60.0)[0] for _ in range(3)]
    assert housekeeping.running()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: every pool re-registers after the fork; one thread serves them all
        code = 1
        try:
            time.sleep(0.2)
            names = [t.name for t in threading.enumerate()]
            os.write(write_end, str(names.count("otel-memory-pool-housekeeping")).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    report = os.read(read_end, 64)
    os.close(read_end)
    assert status == 0 and report == b"1", report
    for pool in pools:
        pool.close()


def test_failing_housekeeping_warns_once_without_the_message(caplog: pytest.LogCaptureFixture) -> None:
    calls = threading.Semaphore(0)

    class Failing:
        housekeeping_interval = None

        def _housekeep(self) -> None:
            calls.release()
            raise RuntimeError("postgresql://app:hunter2@db/app")  # a message that quotes data

    failing = Failing()
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        housekeeping.register(failing)  # pokes once
        assert calls.acquire(timeout=5)
        housekeeping.poke(failing)
        assert calls.acquire(timeout=5)
        housekeeping.poke(failing)  # queued after the second failure: its warning is logged by now
        assert calls.acquire(timeout=5)
    housekeeping.unregister(failing)
    warned = [r.getMessage() for r in caplog.records if "housekeeping failed" in r.getMessage()]
    assert len(warned) == 1 and "RuntimeError" in warned[0] and "test_pool_sync.py" in warned[0]
    assert "hunter2" not in caplog.text


def test_a_pool_closed_before_a_fork_stays_closed_in_the_child(meter_provider: MeterProvider
                                                                 ) -> None:
    pool, _made = make_pool(meter_provider)
    pool.close()
    pid = os.fork()
    if pid == 0:  # child
        try:
            pool.acquire()
        except PoolClosed:
            os._exit(0)
        except BaseException:  # noqa: BLE001 - any other outcome is a failure
            pass
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child's pool lent an object"


def test_a_negative_borrow_timeout_is_refused_by_name(meter_provider: MeterProvider) -> None:
    pool, _made = make_pool(meter_provider)
    with pytest.raises(ConfigError, match=r"timeout=-5 is not valid: expected None or a number of "
                                          r"seconds >= 0"):
        pool.acquire(timeout=-5)
    assert pool.stats().borrowed == 0


def test_a_factory_that_hangs_while_topping_up_holds_up_no_other_pool(
        meter_provider: MeterProvider) -> None:
    release = threading.Event()

    def unreachable_database() -> object:
        release.wait(10)        # a connect with no timeout to a database that does not answer
        return object()

    hanging = ObjectPool("hanging", unreachable_database, 2, min_idle=1,
                         meter_provider=meter_provider)
    try:
        other, _made = make_pool(meter_provider, max_size=2, idle_timeout=0.2)
        with other.borrow():
            pass
        assert other.stats().idle == 1
        # the shared housekeeping thread retires the other pool's idle object meanwhile
        wait_until(lambda: other.stats().destroyed_by("idle_timeout") == 1)
        assert hanging.stats().idle == 0, "its factory still hangs"
    finally:
        release.set()
    wait_until(lambda: hanging.stats().idle == 1)
