"""Seeded leaks and steady workloads for the LeakDetector, one per process for a clean heap.

``python -m tests.e2e.leak_scenarios NAME`` runs one scenario: before each of its checks
(``CHECKS``, or ``LONG_CHECKS`` for workloads with churn) it runs one step of the workload
(some workloads also churn from a thread while the census runs), calls
``LeakDetector.check()`` with the default ranking policy (plus the opt-in rising-floor test
for the workloads with churn), and prints one JSON line: the
suspects of every check and, for a leak, the check at which an expected type was first a
suspect. ``python -m tests.e2e.leak_scenarios --all`` runs every scenario, each in its own
subprocess, and prints recall, false alarms and checks-to-detection.

Example::

    python -m tests.e2e.leak_scenarios list_of_objects
    python -m tests.e2e.leak_scenarios --all
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import functools
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_memory.leak import LeakDetector, LeakSuspect, RankingPolicy
from otel_memory.leak.census import type_name

CHECKS = 16
KIND_CHECKS = 24   # containers, native memory and floors: named within 24 checks
LONG_CHECKS = 60   # scenarios with churn: the rising-floor test needs a window of 36 censuses
DEFAULT = RankingPolicy()
WINDOWED = RankingPolicy(window_checks=36)     # the opt-in rising-floor test on

# --- what the workloads leak or hold ---------------------------------------------------------


class Order:
    def __init__(self, number: int) -> None:
        self.number = number
        self.lines = [number, number + 1]


class Record:
    def __init__(self, key: int) -> None:
        self.key = key
        self.payload = b"r" * 64


class Handler:
    def __init__(self, number: int) -> None:
        self.number = number

    def on_event(self, event: object) -> None:
        self.number += 1


class Node:
    def __init__(self, payload_size: int) -> None:
        self.peer: Node | None = None
        self.payload = bytearray(payload_size)


class Session:
    def __init__(self, number: int) -> None:
        self.number = number
        self.user = f"user-{number}"
        self.data = bytes(160)


class Entry:
    def __init__(self, key: int) -> None:
        self.key = key
        self.value = bytes(100)


_HELD: list[object] = []
_BY_KEY: dict[int, object] = {}
_MEMO: dict[int, tuple[int, str]] = {}


@dataclass
class Scenario:
    """One workload: ``step(i)`` runs before check i; ``expected`` names leaking types."""

    step: Callable[[int], None]
    expected: frozenset[str] = frozenset()
    churn: Callable[[threading.Event], None] | None = None
    checks: int = CHECKS
    policy: RankingPolicy = DEFAULT


def _memo(number: int) -> tuple[int, str]:
    result = _MEMO.get(number)
    if result is None:
        result = _MEMO[number] = (number, str(number) * 12)
    return result


def _churn_batches(stop: threading.Event) -> None:
    rng = random.Random(7)
    while not stop.is_set():
        batch = [{"n": i, "v": [i] * 3} for i in range(rng.randrange(1000, 20000))]
        time.sleep(0.001)
        del batch


def _leak_list(step: int) -> None:
    _HELD.extend(Order(step * 10_000 + i) for i in range(1500))


def _leak_dict(step: int) -> None:
    _BY_KEY.update((step * 10_000 + i, Record(i)) for i in range(1500))


def _leak_memo(step: int) -> None:
    for i in range(3000):
        _memo(step * 10_000 + i)


def _leak_callbacks(step: int) -> None:
    _HELD.extend(Handler(i).on_event for i in range(1500))


def _leak_cycles(step: int) -> None:
    for _ in range(600):
        first, second = Node(512), Node(512)
        first.peer, second.peer = second, first
        _HELD.append(first)


def _leak_untracked_dicts(step: int) -> None:
    _HELD.extend({"id": step * 10_000 + i, "state": "open"} for i in range(3000))


def _leak_strings(step: int) -> None:
    _HELD.extend(f"request {step}-{i} handled" for i in range(3000))


def _leak_dicts(step: int) -> None:
    _HELD.extend({"id": step * 10_000 + i, "tags": ["a", "b"]} for i in range(1000))


def _leak_slowly(step: int) -> None:
    _HELD.extend(Session(step * 1000 + i) for i in range(300))


_CACHE: collections.OrderedDict[int, Entry] = collections.OrderedDict()


def _bounded_cache(step: int) -> None:
    for i in range(700):      # full after 8 steps, 3 after the warm-up
        _CACHE[step * 10_000 + i] = Entry(i)
        if len(_CACHE) > 5000:
            _CACHE.popitem(last=False)


def _batches(step: int) -> None:
    batch = [Record(i) for i in range(random.Random(step).randrange(5000, 15000))]
    _HELD[:] = batch[: len(batch) // 10]   # a sliver survives until the next batch replaces it


_QUEUE: collections.deque[Order] = collections.deque()


def _oscillating_queue(step: int) -> None:
    target = random.Random(step * 31).randrange(1000, 9000)
    while len(_QUEUE) < target:
        _QUEUE.append(Order(len(_QUEUE)))
    while len(_QUEUE) > target:
        _QUEUE.popleft()


def _sawtooth_buffer(step: int) -> None:
    if step % 5 == 0:
        _HELD.clear()          # flushed every fifth step
    else:
        _HELD.extend(Order(i) for i in range(1500))


class _DroppingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


_TRACED: list[TracerProvider] = []


def _traced_requests(step: int) -> None:
    """A service handling requests under a real SDK tracer with a batch processor."""
    if not _TRACED:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(_DroppingExporter(), schedule_delay_millis=50))
        _TRACED.append(provider)
    tracer = _TRACED[0].get_tracer("scenario")
    for number in range(800):
        with tracer.start_as_current_span("request") as span:
            span.set_attribute("request.number", number)
            body = {"items": [{"id": i, "name": f"item-{i}"} for i in range(20)]}
            json.dumps(body)


def _one_time_import(step: int) -> None:
    if step == 8:             # after the warm-up
        import decimal  # noqa: F401
        import email.mime.multipart  # noqa: F401
        import http.server  # noqa: F401
        import xml.dom.minidom  # noqa: F401

        _HELD.extend(Record(i) for i in range(50_000))


# --- one kind each: a container, untracked items, native memory, a floor under churn -------


class Registry:
    """A class attribute that only ever grows: a set of ids seen."""

    seen: set[int] = set()


def _registry_set(step: int) -> None:
    Registry.seen.update(range(step * 100_000, step * 100_000 + 4000))


_BLOBS: dict[int, bytes] = {}


def _bytes_in_dict(step: int) -> None:
    for i in range(2500):
        _BLOBS[step * 10_000 + i] = bytes(48) + i.to_bytes(4, "little")


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
_LIBC.malloc.restype = ctypes.c_void_p
_LIBC.malloc.argtypes = [ctypes.c_size_t]
_NATIVE: list[int] = []


def _native_malloc(step: int) -> None:
    """3 MB a check from libc's malloc, written (resident), never freed; only an int is kept."""
    size = 3 * 1024 * 1024
    address = _LIBC.malloc(size)
    ctypes.memset(address, 1, size)
    _NATIVE.append(address)


class Ticket:
    def __init__(self, number: int, size: int) -> None:
        self.number = number
        self.previous: Ticket | None = None
        self.notes = "n" * size


_WORKING: list[Ticket] = []
_CHAIN: list[Ticket | None] = [None]


def _floor_in_churn(step: int) -> None:
    """A working set of 3,000-12,000 tickets replaced every check, and 200 tickets a check
    kept through a chain of references (no container grows)."""
    rng = random.Random(step * 7919)
    _WORKING[:] = [Ticket(i, rng.randrange(8, 200)) for i in range(rng.randrange(3000, 12_000))]
    for i in range(200):
        ticket = Ticket(i, rng.randrange(8, 200))
        ticket.previous = _CHAIN[0]
        _CHAIN[0] = ticket


_TABLE: dict[int, str] = {}


def _dict_rewritten(step: int) -> None:
    for key in range(20_000):
        _TABLE[key] = f"value {step} {key}"


def _thread_churn(step: int) -> None:
    def work() -> None:
        buffers = [bytearray(64 * 1024) for _ in range(16)]
        del buffers
    threads = [threading.Thread(target=work) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@functools.lru_cache(maxsize=3000)
def _render(number: int) -> str:
    return f"<li>{number}</li>" * 3


def _bounded_lru(step: int) -> None:
    for i in range(900):     # full after 4 steps
        _render(step * 10_000 + i)


_KEPT: list[bytes] = []


def _retained_by_malloc(step: int) -> None:
    """40 MB of 1 KB buffers a check, one in 64 kept until the next check: malloc keeps the
    freed rest for reuse (retained, not leaked)."""
    buffers = [bytes(1024) + i.to_bytes(4, "little") for i in range(40_000)]
    _KEPT[:] = buffers[::64]
    del buffers


SCENARIOS: dict[str, Scenario] = {
    "list_of_objects": Scenario(_leak_list, frozenset({type_name(Order)})),
    "dict_of_objects": Scenario(_leak_dict, frozenset({type_name(Record)})),
    "unbounded_memo": Scenario(_leak_memo, frozenset({"dict", "tuple", "str"})),
    "callbacks_never_removed": Scenario(_leak_callbacks, frozenset({type_name(Handler), "method"})),
    "reference_cycles": Scenario(_leak_cycles, frozenset({type_name(Node), "bytearray"})),
    "untracked_small_dicts": Scenario(_leak_untracked_dicts, frozenset({"dict"})),
    "strings": Scenario(_leak_strings, frozenset({"str"})),
    "slow_leak_in_churn": Scenario(_leak_slowly, frozenset({type_name(Session)}), _churn_batches),
    "leak_hidden_in_churn_of_its_type": Scenario(
        _leak_dicts, frozenset({"floor:dict"}), _churn_batches, checks=LONG_CHECKS, policy=WINDOWED),
    "steady_bounded_cache": Scenario(_bounded_cache),
    "steady_batches": Scenario(_batches, churn=_churn_batches, checks=LONG_CHECKS, policy=WINDOWED),
    "steady_oscillating_queue": Scenario(_oscillating_queue, checks=LONG_CHECKS, policy=WINDOWED),
    "steady_sawtooth_buffer": Scenario(_sawtooth_buffer),
    "steady_one_time_import": Scenario(_one_time_import),
    "steady_traced_requests": Scenario(_traced_requests, checks=LONG_CHECKS, policy=WINDOWED),
    "set_held_by_a_class_attribute": Scenario(
        _registry_set, frozenset({"container:set"}), checks=KIND_CHECKS),
    "bytes_held_by_one_dict": Scenario(
        _bytes_in_dict, frozenset({"bytes", "container:dict"}), checks=KIND_CHECKS),
    "native_malloc": Scenario(_native_malloc, frozenset({"native:native"}), checks=KIND_CHECKS),
    "floor_under_churn": Scenario(
        _floor_in_churn, frozenset({f"floor:{type_name(Ticket)}"}), checks=KIND_CHECKS),
    "steady_dict_rewritten": Scenario(_dict_rewritten, checks=KIND_CHECKS),
    "steady_thread_churn": Scenario(_thread_churn, checks=KIND_CHECKS),
    "steady_bounded_lru_cache": Scenario(_bounded_lru, checks=KIND_CHECKS),
    "steady_memory_retained_by_malloc": Scenario(_retained_by_malloc, checks=KIND_CHECKS),
}


def _label(suspect: LeakSuspect) -> str:
    """A type suspect by its type name (as the older scenarios expect), others as kind:type."""
    return suspect.type_name if suspect.kind == "type" else f"{suspect.kind}:{suspect.type_name}"


def run(name: str) -> dict[str, object]:
    """Run one scenario in this process; the result as JSON-safe values."""
    scenario = SCENARIOS[name]
    detector = LeakDetector(meter_provider=MeterProvider(), tracer_provider=TracerProvider(),
                            interval_s=3600.0, deep_look=False, policy=scenario.policy)
    stop = threading.Event()
    churn = None
    if scenario.churn is not None:
        churn = threading.Thread(target=scenario.churn, args=(stop,), daemon=True)
        churn.start()
    suspects_by_check: list[list[str]] = []
    first_found: dict[str, dict[str, object]] = {}
    detected_at = None
    try:
        for check in range(1, scenario.checks + 1):
            scenario.step(check)
            time.sleep(0.02)
            report = detector.check()
            names = [_label(suspect) for suspect in report.suspects]
            suspects_by_check.append(names)
            for suspect in report.suspects:
                first_found.setdefault(_label(suspect), suspect.to_json_dict())
            if detected_at is None and scenario.expected & set(names):
                detected_at = check
    finally:
        stop.set()
        if churn is not None:
            churn.join()
    warmup = scenario.policy.warmup_checks
    seen = sorted({name for names in suspects_by_check for name in names})
    return {
        "name": name, "leak": bool(scenario.expected), "expected": sorted(scenario.expected),
        "rising_floor_test": scenario.policy.window_checks > 0,
        "detected_at": detected_at,
        "checks_to_detection": None if detected_at is None else detected_at - warmup,
        "suspects": seen, "unexpected": sorted(set(seen) - scenario.expected),
        "suspects_by_check": suspects_by_check, "first_found": first_found,
        "native": report.native.to_json_dict() if report.native else None,
    }


def run_in_subprocess(name: str, timeout: float = 120.0) -> dict[str, object]:
    """Run one scenario in a fresh interpreter; its JSON result."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-m", "tests.e2e.leak_scenarios", name], cwd=root,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scenario {name} failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarize(results: list[dict[str, object]]) -> str:
    """Recall, false alarms and checks-to-detection as text."""
    leaks = [r for r in results if r["leak"]]
    steady = [r for r in results if not r["leak"]]
    found = [r for r in leaks if r["detected_at"] is not None]
    false_alarms = [r for r in steady if r["suspects"]]
    def name(result: dict[str, object]) -> str:
        return f"{result['name']}{' (+rising floor)' if result['rising_floor_test'] else ''}"

    lines = [f"{name(r):50} detected at check {r['detected_at']} "
             f"({r['checks_to_detection']} after warm-up); other suspects: {r['unexpected']}"
             for r in leaks]
    lines += [f"{name(r):50} suspects: {r['suspects']}" for r in steady]
    delays = sorted(int(str(r["checks_to_detection"])) for r in found)
    lines.append(f"recall {len(found)}/{len(leaks)}, false alarms {len(false_alarms)}/{len(steady)}, "
                 f"checks to detection after warm-up: {delays}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv == ["--all"]:
        print(summarize([run_in_subprocess(name) for name in SCENARIOS]))
        return 0
    if len(argv) != 1 or argv[0] not in SCENARIOS:
        print(f"usage: python -m tests.e2e.leak_scenarios NAME|--all; names: {sorted(SCENARIOS)}",
              file=sys.stderr)
        return 2
    print(json.dumps(run(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
