"""The four leak kinds of issue 10, and which of three tools names each (run by bench_leak.py).

Workloads (24 steps each): one module-level dict gaining 5,000 keys a step (container); a
ctypes buffer of 4 MB a step kept in a list (native); 2,000 new str a step into one list
(untracked items); a working set of 2,000-8,000 ``Order`` objects of random size plus 150
leaked ``Order`` a step (a floor under churn). Tools: otel-memory's ``LeakDetector.check()``
after every step; pympler's ``SummaryTracker.diff()`` over the 24 steps (its top 3 rows by
bytes); tracemalloc ``compare_to(..., 'lineno')`` of snapshots before and after (its top 3
lines). A tool names a leak when its answer points at it: our suspect of the right kind; a
pympler row of the leaking type (dict, str, Order; nothing can name native memory); a
tracemalloc line inside the workload that allocates what leaks.

Run: ``.venv/bin/python benchmarks/leak_kinds.py`` (a table), or ``... WORKLOAD TOOL``.
"""

from __future__ import annotations

import ctypes
import json
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable

STEPS = 24
_SESSIONS: dict[int, str] = {}
_BUFFERS: list[object] = []
_LINES: list[str] = []
_WORKING: list[object] = []
_KEPT: list[object] = []


class Order:
    def __init__(self, number: int, size: int) -> None:
        self.number = number
        self.lines = [number] * size


def container(step: int) -> None:
    for i in range(5000):
        _SESSIONS[step * 100_000 + i] = "s"     # LEAK-LINE container


def native(step: int) -> None:
    _BUFFERS.append(ctypes.create_string_buffer(4 * 1024 * 1024))     # LEAK-LINE native


def untracked(step: int) -> None:
    _LINES.extend(f"line {step} {i}" for i in range(2000))     # LEAK-LINE untracked


def floor(step: int) -> None:
    rng = random.Random(step)
    _WORKING[:] = [Order(i, rng.randrange(1, 16)) for i in range(rng.randrange(2000, 8000))]
    _KEPT.extend(Order(i, rng.randrange(1, 16)) for i in range(150))     # LEAK-LINE floor


WORKLOADS: dict[str, tuple[Callable[[int], None], str, str]] = {
    # name: (step, our suspect label, the type a census-diff tool would have to show)
    "container": (container, "container:dict", "dict"),
    "native": (native, "native:native", ""),
    "untracked": (untracked, "type:str", "str"),
    "floor": (floor, "floor:__main__.Order", "__main__.Order"),
}


def _leak_line(name: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        return next(i for i, line in enumerate(source, 1) if line.rstrip().endswith(f"LEAK-LINE {name}"))


def run(name: str, tool: str) -> dict[str, object]:
    step, label, type_name = WORKLOADS[name]
    if tool == "otel-memory":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        from otel_memory.leak import LeakDetector

        detector = LeakDetector(meter_provider=MeterProvider(), tracer_provider=TracerProvider(),
                                deep_look=False)
        found_at = None
        for i in range(1, STEPS + 1):
            step(i)
            labels = [f"{s.kind}:{s.type_name}" for s in detector.check().suspects]
            if found_at is None and label in labels:
                found_at = i
        return {"named": found_at is not None, "answer": f"check {found_at}" if found_at else "-"}
    if tool == "pympler":
        from pympler.tracker import SummaryTracker

        tracker = SummaryTracker()
        for i in range(1, STEPS + 1):
            step(i)
        rows = sorted(tracker.diff(), key=lambda row: -int(row[2]))[:3]
        top = [str(row[0]) for row in rows]
        return {"named": bool(type_name) and type_name in top, "answer": ", ".join(top)}
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    for i in range(1, STEPS + 1):
        step(i)
    stats = tracemalloc.take_snapshot().compare_to(before, "lineno")[:3]
    tracemalloc.stop()
    lines = [stat.traceback[0].lineno for stat in stats if stat.traceback[0].filename == __file__]
    top = [f"{stat.traceback[0].filename.rsplit('/', 1)[-1]}:{stat.traceback[0].lineno}" for stat in stats]
    return {"named": _leak_line(name) in lines, "answer": ", ".join(top)}


def table() -> str:
    tools = ("otel-memory", "pympler", "tracemalloc")
    rows = [f"{'leak kind':10} " + " ".join(f"{tool:28}" for tool in tools)]
    for name in WORKLOADS:
        cells = []
        for tool in tools:
            done = subprocess.run([sys.executable, __file__, name, tool], capture_output=True,
                                  text=True, timeout=600, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            cells.append(f"{'yes' if result['named'] else 'no':3} ({result['answer']})"[:28])
        rows.append(f"{name:10} " + " ".join(f"{cell:28}" for cell in cells))
    return "\n".join(rows)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(run(sys.argv[1], sys.argv[2])))
    else:
        print(table())
