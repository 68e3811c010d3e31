"""Failing probes and failing user code: each failure costs one signal or one call, with one log line.

The manager reads fixture trees (``proc_root`` and ``cgroup_root`` are parameters), so every
file can be made unreadable (a directory where a file should be) or malformed. For each fault
the metrics are collected several times: the signal of the broken file is missing, every other
signal of a healthy tree is still exported, and exactly one warning says what was lost. Then
user code that misbehaves: a pressure listener that raises, a pool health check that hangs, a
cache sizer that raises; each is contained and named in one log line.

Example::

    row = failing_probes(SHORT, tmp_path)
    row.figures["faults"]["statm malformed"]["warnings"]     # 1
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import catalog
from otel_memory.cache import SmartCache
from otel_memory.config import MemoryManagementConfig
from otel_memory.errors import SizerError
from otel_memory.manager import MemoryManager
from otel_memory.pool import ObjectPool
from otel_memory.pressure import MemoryPressure
from tests.conftest import collect

from .profile import Profile, Row

MB = 1024 * 1024
#: Histograms with points only once something happened (a GC pause): not a signal a file gives.
EVENT_DRIVEN = {catalog.MEMORY_GC_PAUSE_DURATION.name}
PSI = ("some avg10=0.00 avg60=0.00 avg300=0.00 total={some}\n"
       "full avg10=0.00 avg60=0.00 avg300=0.00 total={full}\n")


class LogRecords(logging.Handler):
    """Every record of the ``otel_memory`` logger at ``level`` and above while installed."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@contextlib.contextmanager
def captured(level: int = logging.WARNING, logger: str = "otel_memory") -> Iterator[LogRecords]:
    handler = LogRecords(level)
    target = logging.getLogger(logger)
    previous = target.level
    target.setLevel(min(level, previous or logging.WARNING))
    target.addHandler(handler)
    try:
        yield handler
    finally:
        target.removeHandler(handler)
        target.setLevel(previous)


def fixture_tree(root: Path, *, current_mb: int = 100, inactive_mb: int = 4) -> tuple[Path, Path]:
    """A /proc and a cgroup v2 tree with a 512 MB limit; returns (proc_root, cgroup_root)."""
    shutil.rmtree(root, ignore_errors=True)
    proc, cgroup = root / "proc", root / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "pressure").mkdir()
    (proc / "self" / "statm").write_text("25000 12000 3000 1 0 9000 0\n")
    (proc / "self" / "cgroup").write_text("0::/app\n")
    (proc / "pressure" / "memory").write_text(PSI.format(some=123456, full=23456))
    app = cgroup / "app"
    app.mkdir(parents=True)
    (cgroup / "cgroup.controllers").write_text("cpu memory\n")
    (app / "memory.max").write_text(f"{512 * MB}\n")
    set_usage(cgroup, current_mb, inactive_mb)
    (app / "memory.events").write_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 2\n")
    (app / "memory.pressure").write_text(PSI.format(some=5_000_000, full=1_000_000))
    return proc, cgroup


def set_usage(cgroup: Path, current_mb: int, inactive_mb: int = 4) -> None:
    app = cgroup / "app"
    (app / "memory.current").write_text(f"{current_mb * MB}\n")
    (app / "memory.stat").write_text(f"anon 1000\nfile 2000\ninactive_file {inactive_mb * MB}\n")


def _unreadable(path: Path) -> None:
    """A directory where the file was: open() works, read() fails (also for root)."""
    path.unlink()
    path.mkdir()


@contextlib.contextmanager
def psutil_raising() -> Iterator[None]:
    """psutil.Process.memory_full_info raising AccessDenied (a hardened /proc, a seccomp jail)."""
    original = psutil.Process.memory_full_info

    def denied(self: psutil.Process) -> Any:
        raise psutil.AccessDenied(self.pid, "memory_full_info")

    psutil.Process.memory_full_info = denied  # type: ignore[method-assign]
    try:
        yield
    finally:
        psutil.Process.memory_full_info = original  # type: ignore[method-assign]


# fault -> (how to break the tree, the metrics it costs, the limit source expected)
Breaker = Callable[[Path, Path], object]
FAULTS: dict[str, tuple[Breaker, set[str], str]] = {
    "statm malformed": (lambda proc, cg: (proc / "self" / "statm").write_text("garbage\n"),
                        {catalog.PROCESS_MEMORY_USAGE.name, catalog.PROCESS_MEMORY_VIRTUAL.name,
                         catalog.MEMORY_ALLOCATED.name}, "cgroup_v2"),
    "memory.current malformed": (lambda proc, cg: (cg / "app" / "memory.current").write_text("a lot\n"),
                                 {catalog.CONTAINER_MEMORY_USAGE.name,
                                  catalog.CONTAINER_MEMORY_WORKING_SET.name}, "cgroup_v2"),
    "memory.stat unreadable": (lambda proc, cg: _unreadable(cg / "app" / "memory.stat"),
                               {catalog.CONTAINER_MEMORY_WORKING_SET.name}, "cgroup_v2"),
    "memory.events malformed": (lambda proc, cg: (cg / "app" / "memory.events").write_text(
        "low 0\noom_kill many\n"), {catalog.MEMORY_CONTAINER_OOM_KILLS.name}, "cgroup_v2"),
    "memory.pressure malformed": (lambda proc, cg: (cg / "app" / "memory.pressure").write_text(
        "stalls: none\n"), {catalog.MEMORY_PSI_STALL.name}, "cgroup_v2"),
    "memory.max malformed": (lambda proc, cg: (cg / "app" / "memory.max").write_text("lots\n"),
                             set(), "not cgroup_v2"),
    "/proc/self/cgroup unreadable": (lambda proc, cg: _unreadable(proc / "self" / "cgroup"),
                                     {catalog.CONTAINER_MEMORY_USAGE.name,
                                      catalog.CONTAINER_MEMORY_WORKING_SET.name,
                                      catalog.MEMORY_CONTAINER_OOM_KILLS.name}, "not cgroup_v2"),
    "psutil raising": (lambda proc, cg: None, {catalog.MEMORY_USS.name}, "cgroup_v2"),
}


def _exported(proc: Path, cgroup: Path, collections: int = 3) -> tuple[dict[str, list[Any]], str]:
    """{metric: values} of a manager on the tree over ``collections`` cycles, and its limit source."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    config = MemoryManagementConfig(enable_leak_detection=False, enable_uss=True)
    manager = MemoryManager(config, meter_provider=provider, proc_root=proc, cgroup_root=cgroup)
    manager.initialize()
    values: dict[str, list[Any]] = {}
    try:
        for _ in range(collections):
            manager.check_pressure()
            manager.sampler.invalidate()
            for name, metric in collect(reader).items():
                values[name] = [getattr(p, "value", None) for p in metric.data.data_points]
        source = manager.limit.source
    finally:
        manager.shutdown()
        provider.shutdown()
    return {name: found for name, found in values.items() if found}, source


def failing_probes(profile: Profile, root: Path) -> Row:
    """Each fault of FAULTS on a fresh fixture tree, against a healthy tree's signals."""
    row = Row("Failing probes", f"{len(FAULTS)} faults x 3 collections")
    faults: dict[str, dict[str, Any]] = {}
    with row.timed():
        proc, cgroup = fixture_tree(root / "healthy")
        with captured() as healthy_logs:
            healthy, healthy_source = _exported(proc, cgroup)
        row.check("a healthy tree: every signal, no warning, cgroup limit",
                  healthy_logs.records == [] and healthy_source == "cgroup_v2")
        for fault, (breaker, lost, source) in FAULTS.items():
            proc, cgroup = fixture_tree(root / fault.replace("/", "_"))
            breaker(proc, cgroup)
            with captured() as logs, psutil_raising() if fault == "psutil raising" \
                    else contextlib.nullcontext():
                got, got_source = _exported(proc, cgroup)
            missing = set(healthy) - set(got) - EVENT_DRIVEN
            faults[fault] = {"warnings": len(logs.records), "messages": logs.messages,
                             "missing": sorted(missing), "source": got_source}
            row.check(f"{fault}: exactly one warning", len(logs.records) == 1)
            row.check(f"{fault}: only {sorted(lost) or 'the cgroup limit'} lost", missing == lost
                      and set(got) <= set(healthy))
            row.check(f"{fault}: limit source {source}",
                      got_source == source if source == "cgroup_v2" else got_source != "cgroup_v2")
    row.figures["faults"] = faults
    row.figures["healthy"] = sorted(healthy)
    kept = min(len(healthy) - len(f["missing"]) for f in faults.values())
    row.result = (f"each fault: {max(f['warnings'] for f in faults.values())} warning, "
                  f"{max(len(f['missing']) for f in faults.values())} metric(s) at most lost, "
                  f"at least {kept} of {len(healthy)} metrics still exported")
    return row


def contained_user_code(profile: Profile, root: Path) -> Row:
    """A pressure listener that raises, a health check that hangs, a sizer that raises."""
    row = Row("Failing user code", "listener, health check, sizer")
    with row.timed():
        _raising_listener(row, root)
        _hanging_health_check(row)
        _raising_sizer(row)
    figures = row.figures
    row.result = (f"listener: {figures['listener_lines']} log line, others still told; "
                  f"hanging health check: {figures['hang_lines']} log line after "
                  f"{figures['hang_seen_after_s']:.1f} s, {figures['hang_other_borrows']:,} other borrows "
                  f"meanwhile; sizer: {figures['sizer_lines']} log line, value returned uncached")
    return row


def listener_that_raises(level: MemoryPressure, previous: MemoryPressure) -> None:
    raise RuntimeError("listener failed with a secret-looking message: token=abc123")


def _raising_listener(row: Row, root: Path) -> None:
    proc, cgroup = fixture_tree(root / "listener")
    manager = MemoryManager(MemoryManagementConfig(enable_leak_detection=False),
                            meter_provider=MeterProvider(), proc_root=proc, cgroup_root=cgroup)
    manager.initialize()
    heard: list[tuple[MemoryPressure, MemoryPressure]] = []
    try:
        manager.on_pressure_change(listener_that_raises)
        manager.on_pressure_change(lambda level, previous: heard.append((level, previous)))
        set_usage(cgroup, 420)        # HIGH: between 400 MB and the critical 448 MB
        with captured() as logs:
            level = manager.check_pressure()
        set_usage(cgroup, 100)
        after = manager.check_pressure()
    finally:
        manager.shutdown()
    named = [m for m in logs.messages if "listener_that_raises" in m]
    row.figures["listener_lines"] = len(logs.records)
    row.figures["listener_messages"] = logs.messages
    row.check("listener: the others are still told", level == MemoryPressure.HIGH
              and heard == [(MemoryPressure.HIGH, MemoryPressure.LOW),
                            (MemoryPressure.LOW, MemoryPressure.HIGH)] and after == MemoryPressure.LOW)
    row.check("listener: one log line naming it, without its message",
              len(logs.records) == 1 and len(named) == 1 and "abc123" not in named[0])


def _hanging_health_check(row: Row) -> None:
    release = threading.Event()
    hung = threading.Event()

    def health_check(obj: list[int]) -> bool:
        if obj[0] == 1 and not release.is_set():   # the first object's check hangs
            hung.set()
            release.wait(120)
        return True

    made: list[int] = []

    def factory() -> list[int]:
        made.append(len(made) + 1)
        return [made[-1]]

    pool: ObjectPool[list[int]] = ObjectPool("reliability.hang", factory, 4, timeout=1.0,
                                             health_check=health_check, meter_provider=MeterProvider())
    first = pool.acquire()          # object 1 exists and goes idle; its next check hangs
    first.release()
    stuck: list[Any] = []
    with captured() as logs:
        borrower = threading.Thread(target=lambda: stuck.append(pool.acquire()), daemon=True)
        began = time.monotonic()
        borrower.start()
        hung.wait(10)
        others = 0
        seen_after = None
        while time.monotonic() - began < 15 and seen_after is None:
            with pool.borrow() as obj:    # the other borrowers are served meanwhile
                others += obj[0] != 1
            if logs.records:
                seen_after = time.monotonic() - began
            time.sleep(0.001)
        release.set()
        borrower.join(10)
    named = [m for m in logs.messages if "health_check" in m and "reliability.hang" in m]
    row.figures.update(hang_lines=len(logs.records), hang_messages=logs.messages,
                       hang_seen_after_s=seen_after or -1.0, hang_other_borrows=others)
    row.check("hanging health check: one log line naming the pool and health_check",
              len(logs.records) == 1 and len(named) == 1)
    row.check("hanging health check: the other borrowers are served", others > 100)
    row.check("hanging health check: its borrower gets the object once it returns",
              len(stuck) == 1 and stuck[0].get() == [1])
    if stuck:
        stuck[0].release()
    stats = pool.stats()
    row.check("hanging health check: nothing lost", stats.borrowed == 0 and stats.size == stats.idle)
    pool.close()


def _raising_sizer(row: Row) -> None:
    def sizer_that_raises(value: Any) -> int:
        if isinstance(value, bytes):
            raise ValueError(f"cannot size {value!r}")
        return 100

    cache: SmartCache[str, Any] = SmartCache(None, 100, 1, None, name="reliability.sizer",
                                             sizer=sizer_that_raises, meter_provider=MeterProvider())
    cache.insert("fine", "a value the sizer can size")
    before = (cache.usage_bytes, len(cache))
    with captured() as logs:
        loaded = [cache.get_or_load(f"key{i}", lambda key: b"secret-bytes:" + key.encode())
                  for i in range(3)]
    raised: BaseException | None = None
    try:
        cache.insert("direct", b"secret-bytes")
    except SizerError as error:
        raised = error
    named = [m for m in logs.messages if "sizer_that_raises" in m]
    row.figures.update(sizer_lines=len(logs.records), sizer_messages=logs.messages,
                       sizer_error=str(raised))
    row.check("sizer: get_or_load returns the loaded values", loaded == [
        b"secret-bytes:key0", b"secret-bytes:key1", b"secret-bytes:key2"])
    row.check("sizer: one log line naming it, without the value",
              len(logs.records) == 1 and len(named) == 1 and "secret-bytes" not in named[0])
    row.check("sizer: insert raises a SizerError (a TypeError) naming it, without the value",
              isinstance(raised, TypeError) and "sizer_that_raises" in str(raised)
              and "secret-bytes" not in str(raised))
    row.check("sizer: the cache's figures are untouched", (cache.usage_bytes, len(cache)) == before
              and cache.get("fine") == "a value the sizer can size")
