"""GC pause timing: totals per generation, a bounded buffer, a sampled drain, clean removal."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from otel_memory.gcwatch import GcPauseWatch


@pytest.fixture
def watch() -> Iterator[GcPauseWatch]:
    watch = GcPauseWatch(buffer=64, per_tick=5)
    watch.install()
    yield watch
    watch.uninstall()


def test_full_collections_are_timed_in_generation_2(watch: GcPauseWatch) -> None:
    watch.drain()
    counts_before = list(watch.counts)
    for _ in range(3):
        gc.collect()
    assert watch.counts[2] - counts_before[2] == 3
    assert watch.totals[2] > 0
    drained = watch.drain()
    full = [seconds for generation, seconds in drained if generation == 2]
    assert len(full) == 3
    assert all(0 < seconds < 5 for seconds in full)
    assert watch.drain() == []


def test_pauses_are_counted_per_generation(watch: GcPauseWatch) -> None:
    gc.collect(0)
    gc.collect(1)
    assert watch.counts[0] >= 1 and watch.counts[1] >= 1


def test_drain_samples_at_most_per_tick_per_generation(watch: GcPauseWatch) -> None:
    for _ in range(20):
        gc.collect(0)
    gc.collect(2)
    drained = watch.drain()
    assert sum(1 for generation, _ in drained if generation == 0) == 5
    assert sum(1 for generation, _ in drained if generation == 2) == 1
    assert watch.counts[0] >= 20   # totals stay exact


def test_the_buffer_is_bounded(watch: GcPauseWatch) -> None:
    for _ in range(200):
        gc.collect(0)
    assert watch.pending() == 64


def test_install_is_idempotent_and_uninstall_removes_the_callback() -> None:
    watch = GcPauseWatch()
    before = len(gc.callbacks)
    watch.install()
    watch.install()
    assert len(gc.callbacks) == before + 1 and watch.installed
    watch.uninstall()
    watch.uninstall()
    assert len(gc.callbacks) == before and not watch.installed
    counts = list(watch.counts)
    gc.collect()
    assert watch.counts == counts


def test_reset_starts_from_zero(watch: GcPauseWatch) -> None:
    gc.collect()
    watch.reset()
    assert watch.counts == [0, 0, 0] and watch.totals == [0.0, 0.0, 0.0] and watch.drain() == []


def test_injected_clock_measures_the_pause() -> None:
    ticks = iter([10.0, 10.25])
    watch = GcPauseWatch(clock=lambda: next(ticks))
    watch.install()
    try:
        gc.collect()
    finally:
        watch.uninstall()
    assert watch.totals[2] == pytest.approx(0.25)
    assert watch.drain() == [(2, pytest.approx(0.25))]


def test_young_collections_never_push_full_ones_out(watch: GcPauseWatch) -> None:
    gc.collect(2)
    for _ in range(500):   # far more than the buffer holds
        gc.collect(0)
    drained = watch.drain()
    assert sum(1 for generation, _ in drained if generation == 2) == 1
