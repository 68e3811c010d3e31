"""InstrumentSet: catalogue entries become SDK instruments; callbacks never raise; close() silences."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_memory import __version__, catalog
from otel_memory.instruments import SCOPE_NAME, InstrumentSet, get_meter
from tests.conftest import collect, points


def test_observe_creates_the_catalogue_instrument(meter_provider: MeterProvider,
                                                  reader: InMemoryMetricReader) -> None:
    instruments = InstrumentSet(get_meter(meter_provider))
    instruments.observe(catalog.MEMORY_POOL_SIZE, lambda: [(3, {catalog.ATTR_POOL_NAME: "db"}),
                                                           (None, {catalog.ATTR_POOL_NAME: "off"})])
    data = reader.get_metrics_data()
    assert data is not None
    scope = data.resource_metrics[0].scope_metrics[0].scope
    assert scope.name == SCOPE_NAME
    # Our version, and the semantic-conventions version our names follow.
    assert (scope.version, scope.schema_url) == (__version__, catalog.SCHEMA_URL)
    assert catalog.SCHEMA_URL == "https://opentelemetry.io/schemas/1.38.0"
    metric = collect(reader)[catalog.MEMORY_POOL_SIZE.name]
    assert (metric.unit, metric.description) == (catalog.MEMORY_POOL_SIZE.unit,
                                                 catalog.MEMORY_POOL_SIZE.description)
    # None means "not available": no point rather than a zero.
    assert points({metric.name: metric}, metric.name) == [(3, {catalog.ATTR_POOL_NAME: "db"})]


def test_histogram_gets_its_bucket_advice(meter_provider: MeterProvider,
                                          reader: InMemoryMetricReader) -> None:
    instruments = InstrumentSet(get_meter(meter_provider))
    histogram = instruments.histogram(catalog.MEMORY_POOL_WAIT_TIME)
    histogram.record(0.003, {catalog.ATTR_POOL_NAME: "db"})
    point = collect(reader)[catalog.MEMORY_POOL_WAIT_TIME.name].data.data_points[0]
    assert tuple(point.explicit_bounds) == catalog.WAIT_BUCKETS_S
    assert point.bucket_counts[catalog.WAIT_BUCKETS_S.index(0.005)] == 1


def test_the_wrong_kind_is_refused(meter_provider: MeterProvider) -> None:
    instruments = InstrumentSet(get_meter(meter_provider))
    with pytest.raises(ValueError, match="is a histogram"):
        instruments.observe(catalog.MEMORY_POOL_WAIT_TIME, lambda: [])
    with pytest.raises(ValueError, match="not a histogram"):
        instruments.histogram(catalog.MEMORY_POOL_SIZE)


def test_a_raising_callback_warns_once_and_reports_nothing(
        meter_provider: MeterProvider, reader: InMemoryMetricReader,
        caplog: pytest.LogCaptureFixture) -> None:
    instruments = InstrumentSet(get_meter(meter_provider))

    def broken() -> list[tuple[float, dict[str, str]]]:
        raise PermissionError("denied")

    instruments.observe(catalog.MEMORY_POOL_BORROWED, broken)
    instruments.observe(catalog.MEMORY_POOL_SIZE, lambda: [(1, {catalog.ATTR_POOL_NAME: "a"})])
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        for _ in range(3):
            metrics = collect(reader)
            assert catalog.MEMORY_POOL_BORROWED.name not in metrics
            assert catalog.MEMORY_POOL_SIZE.name in metrics
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert catalog.MEMORY_POOL_BORROWED.name in warnings[0] and "PermissionError" in warnings[0]
    assert "denied" not in caplog.text   # the type and where, never the message (values)


def test_close_silences_every_observable(meter_provider: MeterProvider,
                                         reader: InMemoryMetricReader) -> None:
    instruments = InstrumentSet(get_meter(meter_provider))
    calls: list[int] = []

    def counted() -> list[tuple[float, dict[str, str]]]:
        calls.append(1)
        return [(1, {catalog.ATTR_POOL_NAME: "a"})]

    instruments.observe(catalog.MEMORY_POOL_SIZE, counted)
    assert points(collect(reader), catalog.MEMORY_POOL_SIZE.name)
    instruments.close()
    assert not instruments.active
    assert not points(collect(reader), catalog.MEMORY_POOL_SIZE.name)
    assert len(calls) == 1   # the points function is not even called once closed


def test_a_set_made_after_another_closed_reports_on_the_same_meter(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    # The SDK ignores a second registration of a name on a meter: without the shared fan-out
    # the new set's callback would never run (uninstrument() then instrument() went silent).
    first = InstrumentSet(get_meter(meter_provider))
    first.observe(catalog.MEMORY_POOL_SIZE, lambda: [(1, {catalog.ATTR_POOL_NAME: "first"})])
    first.close()
    second = InstrumentSet(get_meter(meter_provider))
    second.observe(catalog.MEMORY_POOL_SIZE, lambda: [(2, {catalog.ATTR_POOL_NAME: "second"})])
    assert points(collect(reader), catalog.MEMORY_POOL_SIZE.name) == [
        (2, {catalog.ATTR_POOL_NAME: "second"})]


def test_two_live_sets_of_one_name_both_report(meter_provider: MeterProvider,
                                               reader: InMemoryMetricReader) -> None:
    first = InstrumentSet(get_meter(meter_provider))
    second = InstrumentSet(get_meter(meter_provider))
    first.observe(catalog.MEMORY_POOL_SIZE, lambda: [(1, {catalog.ATTR_POOL_NAME: "a"})])
    second.observe(catalog.MEMORY_POOL_SIZE, lambda: [(2, {catalog.ATTR_POOL_NAME: "b"})])
    assert sorted(points(collect(reader), catalog.MEMORY_POOL_SIZE.name),
                  key=lambda point: point[0]) == [(1, {catalog.ATTR_POOL_NAME: "a"}),
                                                  (2, {catalog.ATTR_POOL_NAME: "b"})]
    second.close()
    assert points(collect(reader), catalog.MEMORY_POOL_SIZE.name) == [
        (1, {catalog.ATTR_POOL_NAME: "a"})]


def test_observe_prepared_hands_over_the_observations_as_they_are(
        meter_provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    instruments = InstrumentSet(get_meter(meter_provider))
    ready = [Observation(7, {catalog.ATTR_POOL_NAME: "db"}), Observation(9)]
    calls: list[int] = []

    def prepared(options: CallbackOptions) -> list[Observation]:
        assert isinstance(options, CallbackOptions)   # the SDK's, handed on
        calls.append(1)
        return ready

    instruments.observe_prepared(catalog.MEMORY_POOL_SIZE, prepared)
    assert sorted(points(collect(reader), catalog.MEMORY_POOL_SIZE.name), key=lambda p: p[0]) == [
        (7, {catalog.ATTR_POOL_NAME: "db"}), (9, {})]
    (plugged,) = [callback for _fanout, callback in instruments._plugged]
    assert plugged(CallbackOptions()) is ready   # no copy, no per-point work at collection
    instruments.close()
    assert not points(collect(reader), catalog.MEMORY_POOL_SIZE.name)
    assert len(calls) == 2


def test_observe_prepared_refuses_histograms_and_warns_once(
        meter_provider: MeterProvider, reader: InMemoryMetricReader,
        caplog: pytest.LogCaptureFixture) -> None:
    instruments = InstrumentSet(get_meter(meter_provider))
    with pytest.raises(ValueError, match="is a histogram"):
        instruments.observe_prepared(catalog.MEMORY_POOL_WAIT_TIME, lambda _options: [])

    def broken(_options: CallbackOptions) -> list[Observation]:
        raise PermissionError("denied s3cr3t")

    instruments.observe_prepared(catalog.MEMORY_POOL_BORROWED, broken)
    with caplog.at_level(logging.WARNING, logger="otel_memory"):
        for _ in range(3):
            assert catalog.MEMORY_POOL_BORROWED.name not in collect(reader)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "PermissionError" in warnings[0]
    assert "s3cr3t" not in caplog.text


def test_points_without_attributes_reach_the_sdk_as_none(meter_provider: MeterProvider) -> None:
    # An empty mapping costs the SDK a cleaning pass per point; None does not.
    instruments = InstrumentSet(get_meter(meter_provider))
    instruments.observe(catalog.MEMORY_POOL_SIZE, lambda: [(1, {}), (2, {catalog.ATTR_POOL_NAME: "a"})])
    (plugged,) = [callback for _fanout, callback in instruments._plugged]
    observations = list(plugged(CallbackOptions()))
    assert [(o.value, o.attributes) for o in observations] == [(1, None), (2, {catalog.ATTR_POOL_NAME: "a"})]
