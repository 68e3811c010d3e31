"""Fork safety: hooks run in forked children only, objects are held weakly, failures are contained."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from otel_memory import forking


class Recorder:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    def _after_fork_in_child(self) -> None:
        if self.fail:
            raise RuntimeError("broken hook")
        self.log.append(f"{self.name}:{os.getpid()}")


def _in_child(body: Callable[[], object]) -> object:
    """Run ``body`` in a forked child and return what it returned (as JSON)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child
        try:
            os.write(write, json.dumps(body()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_hooks_run_in_the_child_only() -> None:
    log: list[str] = []
    recorder = Recorder("a", log)
    forking.after_fork_in_child(recorder)
    try:
        child_log = _in_child(lambda: log)
        assert isinstance(child_log, list) and len(child_log) == 1
        assert child_log[0].startswith("a:") and child_log[0] != f"a:{os.getpid()}"
        assert log == []   # the parent ran nothing
    finally:
        forking.forget(recorder)


def test_forgotten_and_collected_objects_are_not_called() -> None:
    log: list[str] = []
    forgotten, collected, kept = Recorder("forgotten", log), Recorder("collected", log), Recorder("kept", log)
    for recorder in (forgotten, collected, kept):
        forking.after_fork_in_child(recorder)
    forking.forget(forgotten)
    del collected
    gc.collect()
    try:
        child_log = _in_child(lambda: log)
        assert [entry.split(":")[0] for entry in child_log] == ["kept"]  # type: ignore[union-attr]
    finally:
        forking.forget(kept)


def test_a_failing_hook_warns_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    broken, good = Recorder("broken", log, fail=True), Recorder("good", log)
    forking.after_fork_in_child(broken)
    forking.after_fork_in_child(good)

    def body() -> object:
        return {"log": log, "warnings": [r.getMessage() for r in caplog.records]}

    try:
        with caplog.at_level("WARNING", logger="otel_memory"):
            result = _in_child(body)
    finally:
        forking.forget(broken)
        forking.forget(good)
    assert isinstance(result, dict)
    assert [entry.split(":")[0] for entry in result["log"]] == ["good"]
    assert any("Recorder" in w and "RuntimeError" in w for w in result["warnings"])


def test_nothing_happens_at_import() -> None:
    code = (
        "import gc, threading, os\n"
        "before = len(gc.callbacks)\n"
        "import otel_memory, otel_memory.forking as forking, otel_memory.instrumentor\n"
        "import otel_memory.global_manager\n"
        "import otel_memory.manager, otel_memory.runtime_metrics, otel_memory.sampler\n"
        "print(forking._hooked, len(gc.callbacks) - before, threading.active_count())\n")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.split() == ["False", "0", "1"]


def test_a_process_lock_held_by_a_thread_at_the_fork_is_free_in_the_child() -> None:
    lock = forking.ProcessLock()
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(5)
    try:
        pid = os.fork()
        if pid == 0:                       # the child: the holder thread does not exist here
            got = lock.get().acquire(timeout=2)
            os._exit(0 if got else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not lock.get().acquire(blocking=False)      # the parent's is still held
    finally:
        release.set()
        holder.join(5)
    with lock:                                             # and free again once released
        assert lock.get().locked()
