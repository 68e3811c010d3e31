"""Fork: a manager, a pool, a cache and a leak detector, then os.fork() many times in a row.

The parent keeps two threads borrowing, inserting and reading while it forks; for every other
fork a third thread holds every lock of the library at the moment of the fork (a child that
inherits a held lock and waits for it never finishes). Each child calls ``init_worker()``, uses
the inherited pool and cache and objects of its own, reports its figures through a pipe and
exits; it must do so within a generous timeout (no deadlock), with a ``service.instance.id`` of
its own and counts that start from zero. The parent's own figures must be untouched.

Example::

    row = fork_storm(SHORT)
    row.figures["children"][0]["instance_id"]
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import PROCESS_PID, SERVICE_INSTANCE_ID

from otel_memory import catalog, forking, instruments, workers
from otel_memory.cache import SmartCache
from otel_memory.cache import metrics as cache_metrics
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.integration import HttpClientPool
from otel_memory.manager import MemoryManager
from otel_memory.pool import ObjectPool
from otel_memory.pool import _housekeeping as housekeeping
from otel_memory.pool import metrics as pool_metrics
from tests.conftest import collect, points

from .profile import Profile, Row

CHILD_TIMEOUT_S = 60.0
CHILD_WORK = 200


def library_locks(manager: MemoryManager, pool: ObjectPool[Any], cache: SmartCache[Any, Any],
                  http: HttpClientPool) -> list[Any]:
    """Every lock a child of this process may need, as they are now, in the library's order."""
    detector = manager.leak_detector
    return [manager._tick_lock, manager._lock, manager.sampler._lock,
            *([detector._lock] if detector is not None else []), pool.core.lock, cache._lock,
            http._lock, housekeeping._lock,
            pool_metrics._registry_lock, cache_metrics._lock, instruments._fanouts_lock,
            forking._lock, workers._lock]


@contextlib.contextmanager
def held_by_another_thread(locks: Callable[[], list[Any]]) -> Iterator[None]:
    """While the block runs, another thread holds every lock of ``locks()``."""
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with contextlib.ExitStack() as stack:
            for lock in locks():
                stack.enter_context(lock)
            holding.set()
            done.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    if not holding.wait(10):
        raise RuntimeError("the holder thread could not take the locks")
    try:
        yield
    finally:
        done.set()
        holder.join(10)


def _child(write_fd: int, manager: MemoryManager, pool: ObjectPool[Any], cache: SmartCache[Any, Any],
           http: HttpClientPool, locks_held: bool) -> None:
    """The forked child: work, report one JSON line, exit (never returns)."""
    report: dict[str, Any] = {"pid": os.getpid(), "locks_held": locks_held}
    try:
        report["pool_at_start"] = pool.stats().borrows
        report["cache_at_start"] = (cache.hits, cache.misses)
        reader = InMemoryMetricReader()
        telemetry = workers.init_worker(
            config=MemoryManagementConfig(enable_leak_detection=False,
                                          monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000)),
            readers=lambda: [reader])
        for i in range(CHILD_WORK):
            with pool.borrow() as obj:
                obj.append(i)
            cache.insert(("child", i % 50), i)
            cache.get(("child", i % 50))
        own_pool: ObjectPool[list[int]] = ObjectPool("reliability.fork.child", list, 2,
                                                     meter_provider=telemetry.meter_provider)
        with own_pool.borrow():
            pass
        own_cache: SmartCache[str, int] = SmartCache(telemetry.manager, 10, 1, None,
                                                     name="reliability.fork.child")
        own_cache.insert("one", 1)
        report["http_async_pool"] = http.async_pool.stats().borrows   # made in the child
        data = reader.get_metrics_data()
        got = collect(reader)
        resource = dict(data.resource_metrics[0].resource.attributes) if data else {}
        report.update(
            pool_borrows=pool.stats().borrows, cache_hits=cache.hits,
            instance_id=telemetry.instance_id, resource_instance_id=resource.get(SERVICE_INSTANCE_ID),
            resource_pid=resource.get(PROCESS_PID), stats_pid=telemetry.manager.get_memory_stats().pid,
            inherited_stats_pid=manager.get_memory_stats().pid,
            own_pool_borrows=[v for v, a in points(got, catalog.MEMORY_POOL_BORROWS.name)
                              if a.get(catalog.ATTR_POOL_NAME) == "reliability.fork.child"],
            allocated=[v for v, _a in points(got, catalog.MEMORY_ALLOCATED.name)],
            own_cache_entries=[v for v, a in points(got, catalog.MEMORY_CACHE_ENTRIES.name)
                               if a.get(catalog.ATTR_CACHE_NAME) == "reliability.fork.child"],
            detector_checks=manager.leak_detector.counters.checks if manager.leak_detector else None)
        workers.shutdown_worker()
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        report["error"] = "".join(traceback.format_exception(error))[-2000:]
    finally:
        try:
            os.write(write_fd, (json.dumps(report) + "\n").encode())
        finally:
            os._exit(0)


def collect_child(pid: int, read_fd: int, timeout_s: float = CHILD_TIMEOUT_S
                  ) -> tuple[dict[str, Any], float]:
    """The child's report and how long it took; a child silent for ``timeout_s`` is killed."""
    began = time.monotonic()
    data = b""
    while not data.endswith(b"\n") and time.monotonic() - began < timeout_s:
        ready, _, _ = select.select([read_fd], [], [], 0.5)
        if ready:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            data += chunk
    took = time.monotonic() - began
    if not data.endswith(b"\n"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return {"pid": pid, "error": f"no report within {timeout_s:.0f} s: deadlocked"}, took
    _, status = os.waitpid(pid, 0)
    report: dict[str, Any] = json.loads(data)
    report["exit_status"] = status
    return report, took


def fork_storm(profile: Profile) -> Row:
    """``profile.forks`` forks in a row of a busy process; see the module docstring."""
    row = Row("Fork", f"{profile.forks} forks in a row, 2 busy threads")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    manager = MemoryManager(MemoryManagementConfig(
        monitor_config=MemoryLimitConfig(monitoring_interval_ms=50), leak_detection_interval_s=0.5),
        meter_provider=provider)
    manager.initialize()
    pool = manager.create_pool("reliability.fork", list, 4, timeout=10.0)
    cache: SmartCache[Any, Any] = SmartCache(manager, 500, 4, 60, name="reliability.fork")
    http = HttpClientPool(2, base_url="http://127.0.0.1:9", name="reliability.fork.http", manager=manager)
    stop = threading.Event()
    seen = {"borrows": 0, "hits": 0}

    def busy() -> None:
        i = 0
        while not stop.is_set():
            with pool.borrow() as obj:
                obj[:] = [i]
                seen["borrows"] += 1
            cache.insert(i % 300, i)
            seen["hits"] += cache.get(i % 300) is not None
            i += 1

    threads = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
    children: list[dict[str, Any]] = []
    slowest = 0.0
    ticks_before = manager.last_tick
    with row.timed():
        for thread in threads:
            thread.start()
        for number in range(profile.forks):
            locks_held = number % 2 == 0
            read_fd, write_fd = os.pipe()
            with held_by_another_thread(lambda: library_locks(manager, pool, cache, http)) if locks_held \
                    else contextlib.nullcontext():
                pid = os.fork()
                if pid == 0:
                    os.close(read_fd)
                    _child(write_fd, manager, pool, cache, http, locks_held)
            os.close(write_fd)
            try:
                report, took = collect_child(pid, read_fd)
            finally:
                os.close(read_fd)
            slowest = max(slowest, took)
            children.append(report)
        time.sleep(0.2)
        # the parent's detector goes on checking after the forks: wait for one check (its first
        # comes leak_detection_interval_s after the start, later when a fork held its lock)
        deadline = time.monotonic() + 10
        while (manager.leak_detector is not None and manager.leak_detector.counters.checks == 0
               and time.monotonic() < deadline):
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(10)
    parent_stats = pool.stats()
    detector = manager.leak_detector
    parent: dict[str, Any] = {"borrows": parent_stats.borrows, "seen_borrows": seen["borrows"],
              "initialized": manager.initialized, "ticks": manager.last_tick - ticks_before,
              "detector_checks": detector.counters.checks if detector else None,
              "stats_pid": manager.get_memory_stats().pid}
    http.close()
    manager.shutdown()
    provider.shutdown()
    good = [c for c in children if "error" not in c]
    ids = {c.get("instance_id") for c in good}
    row.check("every child finished within the timeout (no deadlock) and exited 0",
              len(good) == profile.forks and all(c.get("exit_status") == 0 for c in good))
    row.check("every child has its own service.instance.id",
              len(ids) == profile.forks and all(c["resource_instance_id"] == c["instance_id"] for c in good))
    row.check("every child reports its own pid",
              all(c["resource_pid"] == c["pid"] == c["stats_pid"] == c["inherited_stats_pid"] for c in good))
    row.check("every child's numbers start from zero (inherited pool and cache)",
              all(c["pool_at_start"] == 0 and c["cache_at_start"] == [0, 0] for c in good))
    row.check("every child's numbers are its own work",
              all(c["pool_borrows"] == CHILD_WORK and c["cache_hits"] == CHILD_WORK
                  and c["own_pool_borrows"] == [1] and c["own_cache_entries"] == [1]
                  and c["http_async_pool"] == 0 and c["allocated"] for c in good))
    row.check("the parent is unaffected (its counts, its thread, its detector, its pid)",
              parent["borrows"] == parent["seen_borrows"] and bool(parent["initialized"])
              and parent["ticks"] > 0 and (parent["detector_checks"] or 0) > 0
              and parent["stats_pid"] == os.getpid())
    row.figures.update(children=children, parent=parent, slowest_child_s=slowest)
    row.result = (f"{len(good)} of {profile.forks} children finished (slowest {slowest:.2f} s, "
                  f"{sum(1 for c in good if c['locks_held'])} with every lock held at the fork), "
                  f"{len(ids)} distinct service.instance.id; parent: {parent['borrows']:,} borrows "
                  f"= its own count, {parent['ticks']} monitor ticks, "
                  f"{parent['detector_checks']} leak checks")
    return row
