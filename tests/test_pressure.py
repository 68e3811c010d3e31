"""Pressure levels: thresholds from configuration or the limit, and the hysteresis state machine."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from otel_memory.config import MB, MemoryLimitConfig
from otel_memory.errors import ConfigError
from otel_memory.pressure import MemoryPressure, PressureTracker, Thresholds


def test_levels_are_valued_0_to_3_and_titled() -> None:
    assert [int(level) for level in MemoryPressure] == [0, 1, 2, 3]
    assert MemoryPressure.HIGH.title == "High" and MemoryPressure.CRITICAL.state == "critical"


def test_default_thresholds_follow_the_original_ratios() -> None:
    thresholds = Thresholds.from_limit(1024 * MB)
    assert (thresholds.moderate, thresholds.high, thresholds.critical) == (768 * MB, 800 * MB, 896 * MB)
    assert thresholds.hysteresis == int(1024 * MB * 0.02)


def test_configured_thresholds_win_and_the_gc_threshold_stays_between() -> None:
    config = MemoryLimitConfig(warning_threshold_mb=900, critical_threshold_mb=950)
    thresholds = Thresholds.resolve(config, 1000 * MB)
    assert (thresholds.moderate, thresholds.critical) == (900 * MB, 950 * MB)
    assert thresholds.moderate <= thresholds.high <= thresholds.critical
    explicit = Thresholds.resolve(MemoryLimitConfig(gc_pressure_threshold_mb=700, hysteresis_mb=5),
                                  1000 * MB)
    assert (explicit.high, explicit.hysteresis) == (700 * MB, 5 * MB)
    assert explicit.moderate == 700 * MB   # the default warning (750) moved out of the way


def test_a_critical_threshold_above_the_limit_is_refused() -> None:
    expected = r"critical_threshold_mb=1200 is above the effective limit of 1000 MB"
    with pytest.raises(ConfigError, match=expected):
        Thresholds.resolve(MemoryLimitConfig(critical_threshold_mb=1200), 1000 * MB)


def test_a_warning_above_the_default_critical_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"warning threshold 950 MB must be below the critical"):
        Thresholds.resolve(MemoryLimitConfig(warning_threshold_mb=950), 1000 * MB)


@pytest.mark.parametrize(("moderate", "high", "critical", "hysteresis"),
                         [(0, 1, 2, 0), (3, 2, 4, 0), (1, 3, 2, 0), (1, 2, 3, -1), (5, 6, 7, 5)])
def test_thresholds_out_of_order_are_refused(moderate: int, high: int, critical: int,
                                            hysteresis: int) -> None:
    with pytest.raises(ConfigError, match="expected"):
        Thresholds(moderate, high, critical, hysteresis)


def test_the_docstring_example() -> None:
    tracker = PressureTracker(Thresholds(100, 150, 200, hysteresis=10))
    assert [tracker.update(u) for u in (205, 195, 185, 100, 89)] == [
        MemoryPressure.CRITICAL, MemoryPressure.CRITICAL, MemoryPressure.HIGH,
        MemoryPressure.MODERATE, MemoryPressure.LOW]


def test_a_drop_to_low_skips_the_levels_between() -> None:
    tracker = PressureTracker(Thresholds(100, 150, 200, hysteresis=10))
    tracker.update(500)
    assert tracker.update(0) == MemoryPressure.LOW


@st.composite
def thresholds(draw: st.DrawFn) -> Thresholds:
    moderate = draw(st.integers(1, 10_000))
    high = draw(st.integers(moderate, 20_000))
    critical = draw(st.integers(high, 30_000))
    hysteresis = draw(st.integers(0, moderate - 1))
    return Thresholds(moderate, high, critical, hysteresis)


class PressureMachine(RuleBasedStateMachine):
    """Feeds arbitrary usage and checks the state machine's promises after every reading."""

    @initialize(limits=thresholds())
    def start(self, limits: Thresholds) -> None:
        self.thresholds = limits
        self.tracker = PressureTracker(limits)
        self.previous = MemoryPressure.LOW
        self.usage = 0

    @rule(usage=st.integers(0, 40_000))
    def read(self, usage: int) -> None:
        self.previous = self.tracker.level
        self.usage = usage
        self.tracker.update(usage)

    @rule(data=st.data())
    def hover(self, data: st.DataObject) -> None:
        """Usage wobbling just around a threshold."""
        threshold = data.draw(st.sampled_from(
            [self.thresholds.moderate, self.thresholds.high, self.thresholds.critical]))
        self.read(max(0, threshold + data.draw(st.integers(-self.thresholds.hysteresis - 2, 2))))

    @invariant()
    def rises_at_once(self) -> None:
        level = self.tracker.level
        raw = self.thresholds.level_for(self.usage)
        assert level >= raw
        assert level <= max(self.previous, raw)

    @invariant()
    def holds_only_inside_the_band(self) -> None:
        level = self.tracker.level
        if level > self.thresholds.level_for(self.usage):
            assert self.usage >= self.thresholds.start_of(level) - self.thresholds.hysteresis

    @invariant()
    def falls_only_below_the_band(self) -> None:
        level = self.tracker.level
        if level < self.previous:
            assert self.usage < self.thresholds.start_of(self.previous) - self.thresholds.hysteresis
            assert self.usage < self.thresholds.start_of(level + 1) - self.thresholds.hysteresis


PressureMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestPressureMachine = PressureMachine.TestCase


@settings(max_examples=300, deadline=None)
@given(data=st.data(), limits=thresholds().filter(lambda t: t.hysteresis >= 2))
def test_no_flapping_around_a_threshold(data: st.DataObject, limits: Thresholds) -> None:
    """Usage that wobbles by less than the band around one threshold changes level at most once."""
    index = data.draw(st.sampled_from([1, 2, 3]))
    threshold = limits.start_of(MemoryPressure(index))
    below = limits.start_of(MemoryPressure(index - 1))
    above = limits.start_of(MemoryPressure(index + 1)) if index < 3 else threshold * 10 + 10
    low = max(threshold - limits.hysteresis, below)
    high = max(low, min(threshold + limits.hysteresis, above - 1))
    usages = data.draw(st.lists(st.integers(low, high), min_size=2, max_size=60))
    tracker = PressureTracker(limits, level=limits.level_for(usages[0]))
    levels = [tracker.update(u) for u in usages]
    changes = sum(1 for a, b in itertools.pairwise(levels) if a != b)
    assert changes <= 1, (threshold, limits.hysteresis, usages, levels)


@settings(max_examples=300, deadline=None)
@given(limit_mb=st.integers(10, 100_000),
       warning=st.one_of(st.none(), st.floats(0.01, 1.0)),
       gc_mb=st.one_of(st.none(), st.floats(0.01, 1.0)),
       critical=st.one_of(st.none(), st.floats(0.01, 1.0)))
def test_resolve_gives_ordered_thresholds_or_a_named_error(
        limit_mb: int, warning: float | None, gc_mb: float | None, critical: float | None) -> None:
    """Any valid configuration resolves to ordered thresholds or fails naming a field."""
    def mb(ratio: float | None) -> float | None:
        return None if ratio is None else round(ratio * limit_mb, 3)

    try:
        config = MemoryLimitConfig(warning_threshold_mb=mb(warning), gc_pressure_threshold_mb=mb(gc_mb),
                                   critical_threshold_mb=mb(critical))
    except ConfigError:
        return
    try:
        resolved = Thresholds.resolve(config, limit_mb * MB)
    except ConfigError as error:
        assert "threshold" in str(error) and "MB" in str(error)
        return
    assert 0 < resolved.moderate <= resolved.high <= resolved.critical <= limit_mb * MB
    for configured, value in ((config.warning_threshold_mb, resolved.moderate),
                              (config.gc_pressure_threshold_mb, resolved.high),
                              (config.critical_threshold_mb, resolved.critical)):
        if configured is not None:
            assert value == int(configured * MB)


def test_a_low_warning_threshold_narrows_the_default_band() -> None:
    thresholds = Thresholds.resolve(MemoryLimitConfig(warning_threshold_mb=10), 16 * 1024 * MB)
    assert thresholds.hysteresis == 5 * MB   # not 2% of 16 GB, which would make MODERATE sticky
    tracker = PressureTracker(thresholds)
    tracker.update(20 * MB)
    assert tracker.update(1 * MB) == MemoryPressure.LOW


def test_a_band_as_wide_as_the_warning_threshold_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"hysteresis_mb=100 must be below the warning threshold 100 MB"):
        Thresholds.resolve(MemoryLimitConfig(warning_threshold_mb=100, hysteresis_mb=100), 1000 * MB)
