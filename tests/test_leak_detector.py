"""The LeakDetector: check(), spans and events, metrics, logs, privacy, the thread, the manager."""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import threading
import time
import weakref

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_memory import catalog as c
from otel_memory.config import MB, MemoryLimitConfig, MemoryManagementConfig
from otel_memory.leak import LeakDetector, RankingPolicy
from otel_memory.leak import detector as detector_module
from otel_memory.leak.census import type_name
from otel_memory.leak.native import NativeMemoryReader
from otel_memory.leak.report import KINDS
from otel_memory.libc import MallocStats
from otel_memory.manager import MemoryManager
from otel_memory.trend import MemoryTrend, TrendReport
from tests.conftest import ROOT, collect, points

FAST = RankingPolicy(warmup_checks=1, min_growth_checks=2, min_growth_objects=500)
SECRET = "s3cr3t-api-key-value"


class Credential:
    def __init__(self, number: int) -> None:
        self.token = f"{SECRET}-{number}"


class Marker:
    pass


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def leak_checks(detector: LeakDetector, held: list[object], checks: int) -> None:
    for _ in range(checks):
        held.extend(Credential(len(held)) for _ in range(1000))
        detector.check()


def test_a_growing_type_is_reported_spanned_measured_and_logged_without_values(
        meter_provider: object, reader: InMemoryMetricReader,
        spans: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture) -> None:
    provider, exporter = spans
    detector = LeakDetector(meter_provider=meter_provider, tracer_provider=provider,  # type: ignore[arg-type]
                            policy=FAST, deep_look=False)
    assert detector.latest_report() is None
    held: list[object] = []
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        leak_checks(detector, held, 4)
    report = detector.latest_report()
    assert report is not None and report.check_number == 4
    names = [s.type_name for s in report.suspects]
    assert type_name(Credential) in names
    suspect = report.suspects[names.index(type_name(Credential))]
    assert suspect.count_delta == 3000 and suspect.snapshots == 3 and suspect.allocation_site is None

    finished = exporter.get_finished_spans()
    assert [s.name for s in finished] == [c.SPAN_LEAK_CHECK] * 4
    last = finished[-1]
    assert last.attributes[c.ATTR_LEAK_CHECK_PREFIX + "objects_scanned"] == report.objects_scanned
    assert last.attributes[c.ATTR_LEAK_CHECK_PREFIX + "heap_bytes"] == report.heap_bytes
    assert last.attributes[c.ATTR_LEAK_CHECK_PREFIX + "duration_s"] > 0
    events = [e for e in last.events if e.name == c.EVENT_LEAK_SUSPECT]
    assert len(events) == len(report.suspects)
    by_type = {e.attributes[c.ATTR_LEAK_SUSPECT_PREFIX + "type_name"]: e.attributes for e in events}
    attributes = by_type[type_name(Credential)]
    assert attributes[c.ATTR_LEAK_SUSPECT_PREFIX + "count_delta"] == 3000
    assert attributes[c.ATTR_LEAK_SUSPECT_PREFIX + "score"] == pytest.approx(suspect.score)
    assert c.ATTR_LEAK_SUSPECT_PREFIX + "allocation_site" not in attributes   # None is left out

    metrics = collect(reader)
    assert points(metrics, c.MEMORY_LEAK_CHECKS.name) == [(4, {})]
    by_kind = {attributes[c.ATTR_LEAK_KIND]: value
               for value, attributes in points(metrics, c.MEMORY_LEAK_SUSPECTS.name)}
    assert by_kind == {kind: len(report.of_kind(kind)) for kind in KINDS}
    assert sum(by_kind.values()) == len(report.suspects) and by_kind["type"] >= 1
    detected = {attributes[c.ATTR_LEAK_KIND]: value
                for value, attributes in points(metrics, c.MEMORY_LEAK_SUSPECTS_DETECTED.name)}
    assert detected["type"] >= 1
    assert points(metrics, c.MEMORY_LEAK_OBJECTS_SCANNED.name) == [(report.objects_scanned, {})]
    assert points(metrics, c.MEMORY_LEAK_CHECK_DURATION.name)[0][0] == pytest.approx(report.duration_s)
    assert points(metrics, c.MEMORY_LEAK_GROWTH_RATE.name)[0][0] == pytest.approx(
        report.growth_bytes_per_s)

    start = f"Potential memory leak: type {type_name(Credential)} grew by 3000 objects"
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]
    assert len(warnings) == 1     # once, when it became a suspect
    assert "over 3 snapshots" in warnings[0]   # 2 peaks score 0.75 < 0.8
    # the list holding them grew too: a container suspect naming the item type
    containers = report.of_kind("container")
    assert [(s.type_name, s.item_type) for s in containers] == [("list", type_name(Credential))]
    assert by_type["list"][c.ATTR_LEAK_KIND] == "container"

    everything = json.dumps(report.to_json_dict()) + " ".join(r.getMessage() for r in caplog.records)
    everything += repr([(s.attributes, [e.attributes for e in s.events]) for s in finished])
    assert SECRET not in everything
    detector.stop()
    assert collect(reader).get(c.MEMORY_LEAK_CHECKS.name) is None   # silenced


def test_snapshot_and_compare_give_the_change_between_two_moments() -> None:
    detector = LeakDetector(deep_look=False)
    before = detector.snapshot()
    held = [Marker() for _ in range(700)]
    diff = detector.compare(before, detector.snapshot())
    assert {row.type_name: row.count_delta for row in diff.rows}[type_name(Marker)] == 700
    del held


def test_start_runs_checks_from_a_thread_and_stop_ends_it() -> None:
    detector = LeakDetector(interval_s=0.05, deep_look=False)
    detector.start()
    detector.start()                         # idempotent
    deadline = time.monotonic() + 10
    while detector.counters.checks < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert detector.counters.checks >= 2 and detector.running
    thread = detector._thread
    detector.stop()
    assert thread is not None and not thread.is_alive() and not detector.running


def test_the_thread_does_not_keep_the_detector_alive() -> None:
    detector = LeakDetector(interval_s=0.05, deep_look=False)
    detector.start()
    thread = detector._thread
    ref = weakref.ref(detector)
    del detector
    gc.collect()
    assert ref() is None
    assert thread is not None
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_the_thread_starts_no_check_once_the_interpreter_exits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # At exit, a check would hold the exit and end its span after the last export.
    exiting = threading.Event()
    exiting.set()
    monkeypatch.setattr(detector_module, "_interpreter_exiting", exiting)
    detector = LeakDetector(interval_s=0.01, deep_look=False)
    time.sleep(0.02)    # the first check is due
    finished = threading.Thread(target=detector_module._run,
                                args=(weakref.ref(detector), threading.Event(), 0.01))
    finished.start()
    finished.join(timeout=5)
    assert not finished.is_alive(), "the loop ended"
    assert detector.counters.checks == 0


APP_GOING_ON_AFTER_MAIN = """
import threading, time
from otel_memory.leak import LeakDetector
detector = LeakDetector(interval_s=0.05, deep_look=False)
detector.start()
def worker():
    time.sleep(1.0)
    print("after", detector.counters.checks, flush=True)
threading.Thread(target=worker).start()
time.sleep(0.2)
print("main", detector.counters.checks, flush=True)
"""


def test_checks_go_on_while_the_application_runs_on_after_its_main_thread_returned() -> None:
    # The main thread ends before the interpreter waits for the other non-daemon threads.
    result = subprocess.run([sys.executable, "-c", APP_GOING_ON_AFTER_MAIN], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    counts = dict(line.split() for line in result.stdout.splitlines())
    assert int(counts["after"]) > int(counts["main"]) + 2, result.stdout


def test_growth_of_the_process_past_the_threshold_is_an_alert_before_any_type_is_blamed(
        meter_provider: object, reader: InMemoryMetricReader,
        spans: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture) -> None:
    provider, exporter = spans
    manager = MemoryManager(MemoryManagementConfig(enable_leak_detection=False,
                                                   monitor_config=MemoryLimitConfig(max_heap_mb=8192)))
    manager.initialize()
    try:
        manager.trend.clear()
        start = time.monotonic() - 100
        for i in range(11):
            manager.trend.add(start + 10 * i, 500 * MB + i * 20 * MB)     # +200 MB in 100 s
        detector = LeakDetector(meter_provider=meter_provider, tracer_provider=provider,  # type: ignore[arg-type]
                                threshold_bytes=100 * MB, manager=manager, deep_look=True,
                                deep_look_interval_s=3600.0)
        with caplog.at_level(logging.WARNING, logger="otel_memory"):
            first = detector.check()
            second = detector.check()
        assert first.process_growth is not None and first.process_growth.alert
        assert first.process_growth.growth_bytes == pytest.approx(200 * MB)
        assert first.suspects == []
        assert first.deep_summary and first.deep_summary[0].size >= first.deep_summary[-1].size
        assert second.deep_summary == ()                      # rate-limited
        assert points(collect(reader), c.MEMORY_LEAK_PROCESS_GROWTH_ALERT.name) == [
            (1, {c.ATTR_LEAK_ALERT_REASON: "total"}), (0, {c.ATTR_LEAK_ALERT_REASON: "rate"})]
        assert first.process_growth.reason == "total"
        events = [e for e in exporter.get_finished_spans()[0].events
                  if e.name == c.EVENT_LEAK_PROCESS_GROWTH]
        assert events[0].attributes[c.ATTR_LEAK_PROCESS_GROWTH_PREFIX + "threshold_bytes"] == 100 * MB
        alerts = [r for r in caplog.records if "the process grew by 200.0 MB" in r.getMessage()]
        assert len(alerts) == 1                                # when it starts, not every check
        detector.stop()
    finally:
        manager.shutdown()


def test_a_manager_with_leak_detection_starts_and_stops_a_detector() -> None:
    manager = MemoryManager(MemoryManagementConfig(leak_detection_interval_s=30.0,
                                                   leak_detection_threshold_mb=50))
    manager.initialize()
    detector = manager.leak_detector
    assert isinstance(detector, LeakDetector) and detector.running
    assert detector.interval_s == 30.0 and detector.threshold_bytes == 50 * MB
    assert detector.policy == RankingPolicy()
    thread = detector._thread
    assert thread is not None and thread.is_alive() and thread.name == "otel-memory-leak-detector"
    manager.shutdown()
    assert not detector.running and not thread.is_alive() and manager.leak_detector is None


@pytest.mark.parametrize(("options", "message"), [
    ({"interval_s": 0}, r"interval_s=0; expected a number of seconds > 0 and <= 86400"),
    ({"interval_s": float("nan")}, r"interval_s=nan; expected a number of seconds > 0"),
    ({"interval_s": float("inf")}, r"interval_s=inf; expected a number of seconds > 0 and <= 86400"),
    ({"interval_s": "60"}, r"interval_s='60'; expected a number of seconds"),
    ({"threshold_bytes": -1}, "threshold_bytes=-1; expected an int >= 0"),
    ({"chunk_size": 0}, "chunk_size=0; expected a positive int"),
    ({"policy": {"warmup_checks": 1}}, "policy=dict; expected a RankingPolicy"),
])
def test_bad_options_are_refused_naming_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):      # ConfigError is a ValueError
        LeakDetector(**options)  # type: ignore[arg-type]


class Parcel:
    def __init__(self) -> None:
        self.payload = bytes(1000)


def test_new_suspects_get_their_allocation_site_from_a_bounded_tracemalloc_window() -> None:
    import tracemalloc

    assert not tracemalloc.is_tracing()
    detector = LeakDetector(policy=FAST, deep_look=False, attribute_allocations=True,
                            attribution_window_s=0.05)
    held: list[Parcel] = []
    sites = []
    for _ in range(6):
        held.extend(Parcel() for _ in range(1000))
        report = detector.check()
        sites.append({s.type_name: s.allocation_site for s in report.suspects}.get(type_name(Parcel)))
        time.sleep(0.06)
    first = next(i for i, site in enumerate(sites) if site is not None)
    assert sites[first - 1] is None            # suspect at first, the site comes with the next check
    assert sites[-1] is not None and sites[-1].split(":")[0].endswith("test_leak_detector.py")
    assert not tracemalloc.is_tracing()        # the window was closed
    detector.stop()


def test_a_detector_dropped_during_an_attribution_window_stops_tracemalloc() -> None:
    import tracemalloc

    assert not tracemalloc.is_tracing()
    detector = LeakDetector(policy=FAST, deep_look=False, attribute_allocations=True,
                            attribution_window_s=60.0)
    held: list[Parcel] = []
    for _ in range(6):
        held.extend(Parcel() for _ in range(1000))
        detector.check()
        if tracemalloc.is_tracing():
            break
    assert tracemalloc.is_tracing()            # a window is open (it would run for a minute)
    del detector
    gc.collect()
    assert not tracemalloc.is_tracing()        # closed with the detector, not left running
    del held


def test_a_forked_child_restarts_the_thread_with_a_fresh_history() -> None:
    import os

    detector = LeakDetector(interval_s=0.05, policy=FAST, deep_look=False)
    detector.check()
    detector.start()
    pid = os.fork()
    if pid == 0:   # the child: exit status says what it saw
        ok = (detector.latest_report() is None and detector._thread is not None
              and detector._thread.is_alive())
        deadline = time.monotonic() + 5
        while detector.latest_report() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        report = detector.latest_report()
        own_counts = detector.counters.checks == 1 and detector.counters.suspects_detected == 0
        os._exit(0 if ok and own_counts and report is not None and report.check_number == 1 else 1)
    _, status = os.waitpid(pid, 0)
    detector.stop()
    assert os.waitstatus_to_exitcode(status) == 0


class FailingDetector(LeakDetector):
    def check(self):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"could not read {SECRET}")


def test_a_failing_check_in_the_thread_warns_once_with_type_and_location_only(
        caplog: pytest.LogCaptureFixture) -> None:
    detector = FailingDetector(interval_s=0.02, deep_look=False)
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        detector.start()
        deadline = time.monotonic() + 5
        while "leak check failed" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)                        # a few more failing checks: still one warning
        detector.stop()
    warnings = [r.getMessage() for r in caplog.records if "leak check failed" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith("otel_memory: leak check failed: RuntimeError at test_leak_detector.py:")
    assert SECRET not in caplog.text


def test_without_a_manager_the_detector_follows_the_process_rss_itself() -> None:
    detector = LeakDetector(threshold_bytes=10 * MB, deep_look=False, trend_window_s=600.0)
    held: list[bytes] = []
    reports = []
    for _ in range(5):
        held.append(b"x" * (25 * MB))          # touched pages: RSS grows by 25 MB each time
        reports.append(detector.check())
    assert reports[0].process_growth is None     # one RSS sample is no trend
    growth = reports[-1].process_growth
    assert growth is not None and growth.alert and growth.threshold_bytes == 10 * MB
    assert growth.growth_bytes >= 60 * MB and growth.growth_bytes_per_s > 0
    assert detector.counters.process_growth_alert == 1
    detector.stop()
    del held


class FixedTrend:
    """A TrendSource whose trend the test sets."""

    def __init__(self, report: TrendReport) -> None:
        self.report = report
        self.initialized = True

    def get_memory_trend(self) -> TrendReport:
        return self.report


def test_a_sustained_growth_rate_alerts_once_the_window_is_full_and_the_warm_up_over(
        caplog: pytest.LogCaptureFixture) -> None:
    per_hour = 60 * MB / 3600                 # 60 MB/hour: 10 MB over a 10-minute window
    filling = TrendReport(MemoryTrend.INCREASING, per_hour, 400 * MB, 410 * MB, 5 * MB, 5, 300.0, 600.0)
    full = TrendReport(MemoryTrend.INCREASING, per_hour, 400 * MB, 410 * MB, 10 * MB, 10, 590.0, 600.0)
    source = FixedTrend(filling)
    detector = LeakDetector(threshold_bytes=100 * MB, growth_rate_bytes_per_s=50 * MB / 3600,
                            manager=source, policy=FAST, deep_look=False, native=False)
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        warming = detector.check()            # warm-up: no rate alert
        half = detector.check()               # the window is half full: none either
        source.report = full
        alerted = detector.check()
        detector.check()
    assert warming.process_growth is not None and not warming.process_growth.alert
    assert half.process_growth is not None and not half.process_growth.alert
    assert alerted.process_growth is not None and alerted.process_growth.alert
    assert alerted.process_growth.reason == "rate"
    assert alerted.process_growth.rate_threshold_bytes_per_s == pytest.approx(50 * MB / 3600)
    lines = [r.getMessage() for r in caplog.records if "MB/hour" in r.getMessage()]
    assert lines == ["Potential memory leak: the process grows by 60.0 MB/hour over the last 590 s "
                     "(rate threshold 50.0 MB/hour)"]
    assert detector.counters.alert_reason == "rate" and detector.counters.process_growth_alert == 1
    steady_source = FixedTrend(full)         # held weakly by the detector
    off = LeakDetector(growth_rate_bytes_per_s=0, manager=steady_source, policy=FAST,
                       deep_look=False, native=False)
    off.check()
    growth = off.check().process_growth
    assert growth is not None and not growth.alert      # 0: the rate alert is off


@pytest.mark.parametrize("rate", [-1, float("inf"), "50", True])
def test_a_bad_growth_rate_is_refused(rate: object) -> None:
    with pytest.raises(ValueError, match=r"growth_rate_bytes_per_s=.*expected a finite number >= 0"):
        LeakDetector(growth_rate_bytes_per_s=rate)  # type: ignore[arg-type]


def test_native_growth_is_a_native_suspect_in_spans_metrics_and_one_log_line(
        meter_provider: object, reader: InMemoryMetricReader,
        spans: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture) -> None:
    provider, exporter = spans
    resident = [400 * MB]

    def rss() -> int:
        resident[0] += 20 * MB              # 20 MB of native memory a check
        return resident[0]

    detector = LeakDetector(meter_provider=meter_provider, tracer_provider=provider,  # type: ignore[arg-type]
                            policy=FAST, deep_look=False,
                            native=NativeMemoryReader(rss=rss, malloc=lambda: MallocStats(0, 3 * MB, 0)))
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        reports = [detector.check() for _ in range(6)]
    natives = reports[-1].of_kind("native")
    assert len(natives) == 1 and natives[0].size_delta >= 60 * MB
    assert reports[-1].native is not None and reports[-1].native.retained_bytes == 3 * MB
    events = [e for e in exporter.get_finished_spans()[-1].events if e.name == c.EVENT_LEAK_SUSPECT]
    assert [e.attributes[c.ATTR_LEAK_KIND] for e in events] == ["native"]
    data = collect(reader)
    assert points(data, c.MEMORY_LEAK_NATIVE_SIZE.name) == [(reports[-1].native.native_bytes, {})]
    assert points(data, c.MEMORY_MALLOC_RETAINED.name) == [(3 * MB, {})]
    lines = [r.getMessage() for r in caplog.records if "native memory grew" in r.getMessage()]
    assert len(lines) == 1 and "malloc free lists 3.0 MB" in lines[0]
    detector.stop()


def test_every_check_gives_the_memory_its_census_freed_back_to_the_system() -> None:
    trims: list[int] = []
    detector = LeakDetector(policy=FAST, deep_look=False, native=NativeMemoryReader(
        rss=lambda: 400 * MB, malloc=lambda: MallocStats(0, 3 * MB, 0), trim=lambda: trims.append(1)))
    for count in (1, 2, 3):
        detector.check()
        assert len(trims) == count
    detector.stop()


_GROWING: dict[int, Parcel] = {}


def test_a_growing_module_dict_is_named_and_attributed_to_where_its_items_were_made() -> None:
    detector = LeakDetector(policy=FAST, deep_look=False, native=False, attribute_allocations=True,
                            attribution_window_s=0.05)
    containers = []
    try:
        for step in range(6):
            _GROWING.update((step * 10_000 + i, Parcel()) for i in range(1000))
            report = detector.check()
            containers.append([s for s in report.of_kind("container") if s.attribute])
            time.sleep(0.06)
    finally:
        _GROWING.clear()
        detector.stop()
    named = [s for found in containers for s in found if s.attribute == f"{__name__}:_GROWING"]
    assert named and named[0].type_name == "dict" and named[0].item_type == type_name(Parcel)
    assert named[-1].allocation_site is not None
    assert named[-1].allocation_site.split(":")[0].endswith("test_leak_detector.py")
    report_text = json.dumps(report.to_json_dict())
    assert f"{__name__}:_GROWING" in report_text and "Parcel object at" not in report_text


def test_objects_hidden_by_gc_freeze_are_told_of_once(caplog: pytest.LogCaptureFixture) -> None:
    detector = LeakDetector(deep_look=False, native=False)
    gc.freeze()      # as gunicorn --preload applications do before forking
    try:
        frozen = gc.get_freeze_count()
        with caplog.at_level(logging.WARNING, logger="otel_memory"):
            detector.check()
            detector.check()
    finally:
        gc.unfreeze()
    told = [r.args for r in caplog.records if "gc.freeze()" in r.getMessage()]
    assert len(told) == 1, "once"
    assert 0.9 * frozen <= told[0][0] <= frozen     # (a few frozen objects are freed meanwhile)
