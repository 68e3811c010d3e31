"""The exit export: sent when the exporter answers, abandoned (not retried) when it fails."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpOTLPMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpOTLPSpanExporter,
)
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from otel_memory import catalog, exiting
from otel_memory.config import MemoryLimitConfig, MemoryManagementConfig
from otel_memory.manager import MemoryManager
from tests.e2e.otlp_receiver import OtlpReceiver


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _grpc(endpoint: str) -> OTLPMetricExporter:
    return OTLPMetricExporter(endpoint=endpoint, insecure=True)


def _http(endpoint: str) -> HttpOTLPMetricExporter:
    return HttpOTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics")


@pytest.fixture(autouse=True)
def no_failure_before_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a process whose exporters have not failed yet."""
    monkeypatch.setattr(exiting._failures, "failed_at", {})


@pytest.fixture
def provider_with() -> Iterator[Callable[[Any], MeterProvider]]:
    """A MeterProvider exporting through an exporter, with a manager reporting into it."""
    made: list[tuple[MeterProvider, MemoryManager]] = []

    def make(exporter: Any) -> MeterProvider:
        provider = MeterProvider(metric_readers=[
            PeriodicExportingMetricReader(exporter, export_interval_millis=600_000)],
            shutdown_on_exit=False)
        manager = MemoryManager(MemoryManagementConfig(
            monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000), enable_leak_detection=False),
            meter_provider=provider)
        manager.initialize()
        made.append((provider, manager))
        return provider

    yield make
    for provider, manager in made:
        manager.shutdown()
        if not provider._shutdown:
            provider.shutdown(timeout_millis=1000)


@pytest.mark.parametrize("exporter", [_grpc, _http], ids=["grpc", "http"])
def test_an_answering_collector_gets_our_last_values(
        provider_with: Callable[[Any], MeterProvider], exporter: Callable[[str], Any],
        caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if exporter is _grpc else receiver.http_endpoint
        provider = provider_with(exporter(endpoint))
        with caplog.at_level(logging.WARNING):
            assert exiting.finish(provider) == "exported"
        assert catalog.MEMORY_ALLOCATED.name in receiver.metric_names()
    assert not provider._shutdown, "a working pipeline is left to the SDK's own exit hook"
    assert not [r for r in caplog.records if r.name == "otel_memory"]


@pytest.mark.parametrize("exporter", [_grpc, _http], ids=["grpc", "http"])
def test_a_closed_port_is_not_retried(
        provider_with: Callable[[Any], MeterProvider], exporter: Callable[[str], Any],
        caplog: pytest.LogCaptureFixture) -> None:
    provider = provider_with(exporter(f"http://127.0.0.1:{_closed_port()}"))
    with caplog.at_level(logging.WARNING):
        assert exiting.finish(provider) == "abandoned"
    assert provider._shutdown, "shut down, so the SDK's exit hook has nothing left to retry"
    ours = [r.getMessage() for r in caplog.records if r.name == "otel_memory"]
    assert ours == ["otel_memory: the last export at exit failed; shutting the meter provider down "
                    "without waiting for the exporter's retries"]
    # The exporter's own warning still reached the log: our watch passes records on unchanged.
    assert any(r.name.startswith("opentelemetry.exporter") for r in caplog.records)


def test_an_export_that_never_ends_is_abandoned_after_the_wait(
        provider_with: Callable[[Any], MeterProvider]) -> None:
    class Stuck(OTLPMetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
            self._shutdown_in_progress.wait(30)   # like a collector that never answers
            return super().export(metrics_data, timeout_millis, **kwargs)

    provider = provider_with(Stuck(endpoint=f"127.0.0.1:{_closed_port()}", insecure=True))
    assert exiting.finish(provider, wait_s=0.3) == "abandoned"
    assert provider._shutdown


def test_providers_that_cannot_flush_or_are_shut_down_are_left_alone() -> None:
    assert exiting.finish(NoOpMeterProvider()) == "skipped"
    provider = MeterProvider(shutdown_on_exit=False)
    provider.shutdown()
    assert exiting.finish(provider) == "skipped"


def test_each_provider_is_watched_once(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[tuple[Any, ...]] = []
    monkeypatch.setattr(exiting.atexit, "register", lambda *args: registered.append(args))
    monkeypatch.setattr(exiting, "_watched", exiting.weakref.WeakSet())
    monkeypatch.setattr(exiting, "_watching_global", set())
    provider = MeterProvider(shutdown_on_exit=False)
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    exiting.finish_at_exit(provider)
    exiting.finish_at_exit(provider)
    exiting.finish_at_exit(tracer_provider, exiting.TRACES)
    exiting.finish_at_exit(tracer_provider, exiting.TRACES)
    exiting.finish_at_exit(None)
    exiting.finish_at_exit(None)
    exiting.finish_at_exit(None, exiting.TRACES)
    exiting.finish_at_exit(None, exiting.TRACES)
    assert len(registered) == 4
    assert registered[0][0] is exiting._at_exit and registered[0][1]() is provider
    assert registered[1][0] is exiting._at_exit and registered[1][1]() is tracer_provider
    # None: the global provider of the signal, looked up at exit
    assert registered[2] == (exiting._at_exit, metrics.get_meter_provider)
    assert registered[3] == (exiting._at_exit, trace.get_tracer_provider)
    provider.shutdown()


def test_an_unknown_signal_is_refused_by_name() -> None:
    expected = r"signal='logs' is not known; expected one of \['metrics', 'traces'\]"
    with pytest.raises(ValueError, match=expected):
        exiting.finish_at_exit(None, "logs")


def test_a_manager_registers_its_meter_and_tracer_providers(
        monkeypatch: pytest.MonkeyPatch, meter_provider: MeterProvider) -> None:
    seen: list[tuple[Any, str]] = []
    monkeypatch.setattr(exiting, "finish_at_exit",
                        lambda provider, signal=exiting.METRICS: seen.append((provider, signal)))
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    manager = MemoryManager(MemoryManagementConfig(enable_leak_detection=False),
                            meter_provider=meter_provider, tracer_provider=tracer_provider)
    manager.initialize()
    manager.shutdown()
    assert seen == [(meter_provider, exiting.METRICS), (tracer_provider, exiting.TRACES)]


# --- the tracer provider: the leak detector's memory.leak_check spans --------------------------

def _grpc_spans(endpoint: str) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=endpoint, insecure=True)


def _http_spans(endpoint: str) -> HttpOTLPSpanExporter:
    return HttpOTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")


@pytest.fixture
def tracer_provider_with() -> Iterator[Callable[[Any], tuple[TracerProvider, MemoryManager]]]:
    """A TracerProvider exporting in batches (none before exit), with a manager whose leak
    detector reports its checks into it."""
    made: list[tuple[TracerProvider, MemoryManager]] = []

    def make(exporter: Any) -> tuple[TracerProvider, MemoryManager]:
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
        manager = MemoryManager(MemoryManagementConfig(
            monitor_config=MemoryLimitConfig(monitoring_interval_ms=60_000),
            leak_detection_interval_s=3600), tracer_provider=provider)
        manager.initialize()
        made.append((provider, manager))
        return provider, manager

    yield make
    for provider, manager in made:
        manager.shutdown()
        provider.shutdown()


@pytest.mark.parametrize("exporter", [_grpc_spans, _http_spans], ids=["grpc", "http"])
def test_an_answering_collector_gets_the_leak_checks_at_exit(
        tracer_provider_with: Callable[[Any], tuple[TracerProvider, MemoryManager]],
        exporter: Callable[[str], Any], caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if exporter is _grpc_spans else receiver.http_endpoint
        provider, manager = tracer_provider_with(exporter(endpoint))
        manager.leak_detector.check()
        assert receiver.spans() == [], "queued, not yet exported"
        with caplog.at_level(logging.WARNING):
            assert exiting.finish(provider) == "exported"
        assert [span.name for span in receiver.spans()] == [catalog.SPAN_LEAK_CHECK]
    assert not [r for r in caplog.records if r.name == "otel_memory"]


class _NotesShutdown:
    """Notes for each export of the OTLP span exporter it is mixed into whether the exporter
    was shut down by the time the export ended."""

    _shutdown: bool

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.ended_shut_down: list[bool] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result: SpanExportResult = super().export(spans)  # type: ignore[misc]
        self.ended_shut_down.append(self._shutdown)
        return result


class _Recording(_NotesShutdown, OTLPSpanExporter):
    pass


class _HttpRecording(_NotesShutdown, HttpOTLPSpanExporter):
    pass


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_closed_port_ends_the_span_exporters_retries(
        tracer_provider_with: Callable[[Any], tuple[TracerProvider, MemoryManager]], protocol: str,
        caplog: pytest.LogCaptureFixture) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    exporter: _Recording | _HttpRecording = (
        _Recording(endpoint=endpoint, insecure=True) if protocol == "grpc"
        else _HttpRecording(endpoint=f"{endpoint}/v1/traces"))
    provider, manager = tracer_provider_with(exporter)
    manager.leak_detector.check()
    with caplog.at_level(logging.WARNING):
        assert exiting.finish(provider) == "abandoned"
    # The exit flush's export was cut short by the exporter's shutdown, not retried to the end
    # of its 10 s timeout (what the BatchSpanProcessor's shutdown alone waits for).
    assert exporter.ended_shut_down == [True]
    ours = [r.getMessage() for r in caplog.records if r.name == "otel_memory"]
    assert ours == ["otel_memory: the last export at exit failed; shutting the tracer provider down "
                    "without waiting for the exporter's retries"]
    # the processor's shutdown shuts the exporter down a second time: not one more warning
    assert not [r for r in caplog.records if "already shutdown" in r.getMessage()]
    assert provider.force_flush() is False, "the span processor is shut down"


def test_a_span_export_that_never_ends_is_abandoned_after_the_wait(
        tracer_provider_with: Callable[[Any], tuple[TracerProvider, MemoryManager]]) -> None:
    class Stuck(OTLPSpanExporter):
        released: list[bool] = []

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            # like a collector that never answers: only the exporter's shutdown ends it
            self.released.append(self._shutdown_in_progress.wait(30))
            return SpanExportResult.FAILURE

    exporter = Stuck(endpoint=f"127.0.0.1:{_closed_port()}", insecure=True)
    provider, manager = tracer_provider_with(exporter)
    manager.leak_detector.check()
    assert exiting.finish(provider, wait_s=0.3) == "abandoned"
    assert exporter.released == [True], "the export was ended by the exporter's shutdown"


class _BlockingProcessor(SpanProcessor):
    """A span processor without a span exporter whose shutdown blocks until released."""

    def __init__(self) -> None:
        self.shutting_down = threading.Event()
        self.release = threading.Event()
        self.flushes = 0

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.flushes += 1
        logging.getLogger("opentelemetry.sdk.trace").warning("export failed")
        return False

    def shutdown(self) -> None:
        self.shutting_down.set()
        self.release.wait(30)


def test_a_provider_whose_shutdown_hangs_does_not_hold_the_exit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exiting, "ABANDON_WAIT_S", 0.2)
    processor = _BlockingProcessor()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    try:
        assert exiting.finish(provider) == "abandoned"
        assert processor.flushes == 1
        assert processor.shutting_down.wait(5), "the provider's shutdown was started"
        assert not processor.release.is_set()   # and is still running: finish() did not wait for it
    finally:
        processor.release.set()


# --- a failure shortly before exit -------------------------------------------------------------

class _SlowAnswer(OTLPMetricExporter):
    """A metric exporter whose answer takes ``delay_s``: a busy collector that does answer."""

    def __init__(self, delay_s: float, **options: Any) -> None:
        super().__init__(**options)
        self.delay_s = delay_s

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        time.sleep(self.delay_s)
        return super().export(metrics_data, timeout_millis, **kwargs)


def test_after_a_recent_export_failure_a_flush_held_up_is_given_the_grace_only(
        provider_with: Callable[[Any], MeterProvider], caplog: pytest.LogCaptureFixture) -> None:
    class Stuck(OTLPMetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
            self._shutdown_in_progress.wait(30)   # held up behind another export's back-off
            return super().export(metrics_data, timeout_millis, **kwargs)

    provider = provider_with(Stuck(endpoint=f"127.0.0.1:{_closed_port()}", insecure=True))
    exiting.finish_at_exit(provider)   # from here on export failures are noted
    logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter").warning(
        "Transient error StatusCode.UNAVAILABLE encountered while exporting metrics, retrying")
    with caplog.at_level(logging.WARNING):
        assert exiting.finish(provider) == "abandoned"   # the default wait is 30 s
    assert [r.getMessage() for r in caplog.records if r.name == "otel_memory"] == [
        "otel_memory: the last export at exit failed; shutting the meter provider down "
        "without waiting for the exporter's retries"]


def test_without_a_recent_failure_a_slow_collector_is_waited_for(
        provider_with: Callable[[Any], MeterProvider], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exiting, "RECENT_GRACE_S", 0.1)
    with OtlpReceiver() as receiver:
        provider = provider_with(_SlowAnswer(0.5, endpoint=receiver.grpc_endpoint, insecure=True))
        exiting.finish_at_exit(provider)
        assert exiting.finish(provider) == "exported"
        assert catalog.MEMORY_ALLOCATED.name in receiver.metric_names()


# --- after our hooks: the SDK's own exit exports ------------------------------------------------

@pytest.fixture
def exit_hooks(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[], None]]:
    """finish_at_exit() as in a fresh process: the hooks it registers are collected here, in
    the order atexit would run them (the last registered first), and none has run yet."""
    hooks: list[Callable[[], None]] = []
    register = exiting.atexit.register

    def collect(hook: Callable[..., Any], *args: Any) -> Any:
        if hook is not exiting._at_exit:
            return register(hook, *args)
        hooks.insert(0, lambda: hook(*args))
        return hook

    monkeypatch.setattr(exiting, "_exit", exiting._ExitState())
    monkeypatch.setattr(exiting, "_watched", exiting.weakref.WeakSet())
    monkeypatch.setattr(exiting, "_watching_global", set())
    monkeypatch.setattr(exiting.atexit, "register", collect)
    return hooks


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_span_ended_after_our_hook_does_not_hold_the_sdks_exit_export(
        exit_hooks: list[Callable[[], None]], protocol: str,
        caplog: pytest.LogCaptureFixture) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    exporter: _Recording | _HttpRecording = (
        _Recording(endpoint=endpoint, insecure=True) if protocol == "grpc"
        else _HttpRecording(endpoint=f"{endpoint}/v1/traces"))
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    exiting.finish_at_exit(provider, exiting.TRACES)
    with caplog.at_level(logging.WARNING):
        [our_hook] = exit_hooks
        our_hook()                          # nothing to send yet: flushed
        # an exit hook of the application (registered before ours, so run after it) ends a span
        with provider.get_tracer("app").start_as_current_span("late"):
            pass
        provider.shutdown()                 # the SDK's exit hook exports it: the collector is down
    # the export's retries were ended by the exporter's shutdown, not run to the 10 s timeout
    assert exporter.ended_shut_down == [True]
    # the exporter's warnings say it failed and was shut down: no more from us, no repeats
    assert not [r for r in caplog.records if r.name == "otel_memory"]
    assert not [r for r in caplog.records if "already shutdown" in r.getMessage()]


class _RecordingMetrics(OTLPMetricExporter):
    """Notes for each export whether the exporter was shut down by the time it ended."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.ended_shut_down: list[bool] = []

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        result = super().export(metrics_data, timeout_millis, **kwargs)
        self.ended_shut_down.append(self._shutdown)
        return result


def test_a_collector_gone_after_our_flush_does_not_hold_the_sdks_last_metrics_export(
        exit_hooks: list[Callable[[], None]], provider_with: Callable[[Any], MeterProvider]) -> None:
    with OtlpReceiver() as receiver:
        exporter = _RecordingMetrics(endpoint=receiver.grpc_endpoint, insecure=True)
        provider = provider_with(exporter)
        exiting.finish_at_exit(provider)
        for hook in exit_hooks:     # the manager's: its meter provider, the global tracer provider
            hook()
        assert catalog.MEMORY_ALLOCATED.name in receiver.metric_names(), "our flush was sent"
    provider.shutdown()     # the SDK's exit hook: one more export, and the collector went away
    assert exporter.ended_shut_down == [False, True]


def test_only_an_export_failing_after_our_first_hook_ends_the_retries_once_per_signal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ended: list[str | None] = []
    called = threading.Event()

    def shut_down_exporters(signal: str | None) -> None:
        ended.append(signal)
        called.set()

    monkeypatch.setattr(exiting, "_exit", exiting._ExitState())
    monkeypatch.setattr(exiting, "_shut_down_exporters", shut_down_exporters)
    grpc_logger = "opentelemetry.exporter.otlp.proto.grpc.exporter"

    def record(logger: str, level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord(logger, level, __file__, 1, message, None, None)

    watch = exiting._failures      # on the export loggers from the first finish_at_exit() on
    for message in exiting.SHUTDOWN_MESSAGES:           # what a shutdown makes exporters say
        watch.filter(record(grpc_logger, logging.WARNING, message))
    assert watch.failed_at == {}, "not a failure"
    transient = record(grpc_logger, logging.WARNING, "Transient error %s encountered while exporting")
    watch.filter(transient)                             # the process is not exiting yet
    exiting._exit.began = True
    for message in exiting.SHUTDOWN_MESSAGES:
        watch.filter(record(grpc_logger, logging.WARNING, message))
    watch.filter(record("opentelemetry.sdk.metrics._internal", logging.WARNING,
                        "shutdown can only be called once"))     # not an export failing
    assert not called.wait(0.2)
    failed_spans = record("opentelemetry.sdk._shared_internal", logging.ERROR,
                          "Exception while exporting %s.")
    failed_spans.args = ("Span",)
    watch.filter(failed_spans)
    assert called.wait(5)
    called.clear()
    watch.filter(failed_spans)
    assert not called.wait(0.2), "once a signal"
    watch.filter(transient)                             # names no signal: all of them
    assert called.wait(5)
    watch.filter(record("opentelemetry.sdk.metrics._internal.export", logging.ERROR,
                        "Exception while exporting metrics"))
    time.sleep(0.2)
    assert ended == [exiting.TRACES, None]


def test_export_records_are_told_apart_by_signal() -> None:
    def record(logger: str, message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord(logger, logging.WARNING, __file__, 1, message, args, None)

    transient = "Transient error %s encountered while exporting %s to %s, retrying in %.2fs."
    grpc = "opentelemetry.exporter.otlp.proto.grpc.exporter"
    assert exiting.signal_of(record(grpc, transient, "UNAVAILABLE", "traces", "localhost:4317",
                                    1.0)) == exiting.TRACES
    assert exiting.signal_of(record(grpc, transient, "UNAVAILABLE", "metrics", "localhost:4317",
                                    1.0)) == exiting.METRICS
    assert exiting.signal_of(record(grpc, transient, "UNAVAILABLE", "logs", "x", 1.0)) == exiting.LOGS
    http = "opentelemetry.exporter.otlp.proto.http"
    assert exiting.signal_of(record(f"{http}.trace_exporter", "Transient error")) == exiting.TRACES
    assert exiting.signal_of(record(f"{http}.metric_exporter", "Transient error")) == exiting.METRICS
    assert exiting.signal_of(record("opentelemetry.sdk.metrics._internal.export",
                                    "Exception while exporting metrics")) == exiting.METRICS
    assert exiting.signal_of(record("opentelemetry.sdk._shared_internal",
                                    "Exception while exporting %s.", "Span")) == exiting.TRACES
    assert exiting.signal_of(record(grpc, "Shutdown in progress, aborting retry.")) is None
    assert exiting.signal_of(record(f"{http}.trace_exporter", "%s", "metrics")) is None, "both"


def test_a_failing_metrics_export_at_exit_leaves_the_span_exporters_alone(
        exit_hooks: list[Callable[[], None]], caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as receiver:
        span_exporter = OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
        tracer_provider = TracerProvider(shutdown_on_exit=False)
        tracer_provider.add_span_processor(
            BatchSpanProcessor(span_exporter, schedule_delay_millis=600_000))
        meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(
            _grpc(f"http://127.0.0.1:{_closed_port()}"), export_interval_millis=600_000)],
            shutdown_on_exit=False)
        meter_provider.get_meter("app").create_counter("app.requests").add(1)
        exiting.finish_at_exit(tracer_provider, exiting.TRACES)
        exiting.finish_at_exit(meter_provider)
        with caplog.at_level(logging.WARNING):
            for hook in exit_hooks:      # the meter provider's first: its export fails
                hook()
            with tracer_provider.get_tracer("app").start_as_current_span("late"):
                pass
            tracer_provider.shutdown()   # the SDK's exit hook: the span collector answers
        assert [span.name for span in receiver.spans()] == ["late"]
    ours = [r.getMessage() for r in caplog.records if r.name == "otel_memory"]
    assert ours == ["otel_memory: the last export at exit failed; shutting the meter provider "
                    "down without waiting for the exporter's retries"]


class _SlowSpans(OTLPSpanExporter):
    """A span exporter whose answer takes ``delay_s`` (a busy collector that does answer); while
    it waits, the records in ``meanwhile`` are logged by the gRPC exporters' shared logger."""

    def __init__(self, delay_s: float, meanwhile: Sequence[tuple[str, tuple[object, ...]]],
                 **options: Any) -> None:
        super().__init__(**options)
        self.delay_s = delay_s
        self.meanwhile = meanwhile

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for message, args in self.meanwhile:
            logging.getLogger(GRPC_LOGGER).warning(message, *args)
        time.sleep(self.delay_s)
        result: SpanExportResult = super().export(spans)
        return result


GRPC_LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"


TRANSIENT_METRICS = ("Transient error %s encountered while exporting %s to %s, retrying in %.2fs.",
                     ("StatusCode.UNAVAILABLE", "metrics", "127.0.0.1:9", 1.0))


@pytest.mark.parametrize(("meanwhile", "metrics_failed_before"), [
    ([("Shutdown in progress, aborting retry.", ())], False),       # the metric exporter's
    ([("Exporter already shutdown, ignoring batch", ())], False),   # shutdown: no signal named
    ([TRANSIENT_METRICS], False),                                    # metrics failing meanwhile
    ([], True),                                  # metrics failed a moment before the exit
], ids=["shutdown", "after-shutdown", "metrics-failing", "metrics-failed-before"])
def test_what_another_signal_or_a_shutdown_logs_does_not_cut_a_span_flush_short(
        exit_hooks: list[Callable[[], None]], meanwhile: list[tuple[str, tuple[object, ...]]],
        metrics_failed_before: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exiting, "RECENT_GRACE_S", 0.1)   # what a recent span failure would give
    with OtlpReceiver() as receiver:
        exporter = _SlowSpans(0.5, meanwhile, endpoint=receiver.grpc_endpoint, insecure=True)
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
        exiting.finish_at_exit(provider, exiting.TRACES)
        if metrics_failed_before:
            message, args = TRANSIENT_METRICS
            logging.getLogger(GRPC_LOGGER).warning(message, *args)
        with provider.get_tracer("app").start_as_current_span("last"):
            pass
        assert exiting.finish(provider) == "exported"
        assert [span.name for span in receiver.spans()] == ["last"]
        provider.shutdown()


def test_a_record_an_earlier_filter_drops_still_counts_as_a_failure(
        exit_hooks: list[Callable[[], None]], meter_provider: MeterProvider) -> None:
    # the SDK's duplicate filter and our rate limiter drop repeated warnings on these loggers
    logger = logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter")
    drop_all = logging.Filter("nothing-is-named-so")
    logger.addFilter(drop_all)
    try:
        exiting.finish_at_exit(meter_provider)
        logger.warning("Transient error %s encountered while exporting %s",
                       "StatusCode.UNAVAILABLE", "traces")
    finally:
        logger.removeFilter(drop_all)
    assert exiting._failures.last_failure(exiting.TRACES) > time.monotonic() - 5
    assert exiting._failures.last_failure(exiting.METRICS) == float("-inf")
