"""Leak checks arrive as spans with leak-suspect events, and as metrics, through real OTLP exporters.

A separate process runs a MemoryManager with leak detection every 0.25 s and leaks objects
holding a secret; it exports over OTLP/gRPC to the receiver the foundation's tests use.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from otel_memory import catalog as c

from .otlp_receiver import OtlpReceiver, any_value

SECRET = "tok_live_9f8e7d6c5b4a"

APP = textwrap.dedent(f"""
    import time
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from otel_memory.config import MemoryManagementConfig
    from otel_memory.manager import MemoryManager
    import sys

    endpoint = sys.argv[1]
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, insecure=True), schedule_delay_millis=200))
    meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=300)])

    class Ticket:
        def __init__(self, number):
            self.secret = "{SECRET}-" + str(number)

    held = []
    manager = MemoryManager(MemoryManagementConfig(leak_detection_interval_s=0.25),
                            meter_provider=meter_provider, tracer_provider=tracer_provider)
    manager.initialize()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        held.extend(Ticket(len(held)) for _ in range(300))
        time.sleep(0.05)
        report = manager.leak_detector.latest_report()
        if report and report.check_number >= 12:
            break
    manager.shutdown()
    tracer_provider.shutdown()
    meter_provider.shutdown()
    print(report.check_number, [s.type_name for s in report.suspects])
""")


def test_leak_checks_and_suspects_arrive_as_spans_events_and_metrics_over_otlp() -> None:
    with OtlpReceiver() as rx:
        done = subprocess.run([sys.executable, "-c", APP, rx.grpc_endpoint], capture_output=True,
                              text=True, timeout=90, check=False)
        assert done.returncode == 0, done.stderr
        assert "__main__.Ticket" in done.stdout, done.stdout
        assert rx.wait_for(lambda r: any(s.name == c.SPAN_LEAK_CHECK and s.events for s in r.spans()),
                           timeout=10)
        checks = [s for s in rx.spans() if s.name == c.SPAN_LEAK_CHECK]
        assert len(checks) >= 8
        suspect_events = [e for s in checks for e in s.events if e.name == c.EVENT_LEAK_SUSPECT]
        attributes = [{kv.key: any_value(kv.value) for kv in e.attributes} for e in suspect_events]
        tickets = [a for a in attributes
                   if a[c.ATTR_LEAK_SUSPECT_PREFIX + "type_name"] == "__main__.Ticket"]
        assert tickets
        assert {t[c.ATTR_LEAK_KIND] for t in tickets} == {"type"}
        kinds = {a[c.ATTR_LEAK_KIND] for a in attributes}
        assert kinds <= {"type", "container", "native", "floor"}
        assert "container" in kinds     # the list the tickets are kept in grows too
        assert tickets[-1][c.ATTR_LEAK_SUSPECT_PREFIX + "count_delta"] >= 1000
        assert tickets[-1][c.ATTR_LEAK_SUSPECT_PREFIX + "snapshots"] >= 4
        assert 0.8 <= tickets[-1][c.ATTR_LEAK_SUSPECT_PREFIX + "score"] < 1
        span_attributes = {kv.key: any_value(kv.value) for kv in checks[-1].attributes}
        assert span_attributes[c.ATTR_LEAK_CHECK_PREFIX + "objects_scanned"] > 10_000
        assert span_attributes[c.ATTR_LEAK_CHECK_PREFIX + "heap_bytes"] > 1_000_000

        assert rx.wait_for(lambda r: bool(r.metrics(c.MEMORY_LEAK_SUSPECTS.name)), timeout=10)
        points = [p for m in rx.metrics(c.MEMORY_LEAK_SUSPECTS.name) for p in m.gauge.data_points]
        by_kind = {any_value(kv.value): p.as_int for p in points for kv in p.attributes
                   if kv.key == c.ATTR_LEAK_KIND}
        assert set(by_kind) == {"type", "container", "native", "floor"} and max(by_kind.values()) >= 1
        native = [p.as_int for m in rx.metrics(c.MEMORY_LEAK_NATIVE_SIZE.name) for p in m.gauge.data_points]
        assert native and native[-1] > 0
        checks_total = [p.as_int for m in rx.metrics(c.MEMORY_LEAK_CHECKS.name) for p in m.sum.data_points]
        assert max(checks_total) >= 8
        everything = repr([(s.attributes, [e.attributes for e in s.events]) for s in rx.spans()])
        assert SECRET not in everything
