"""TrendTracker: least-squares slope over a rolling window, a noise band, average and peak."""

from __future__ import annotations

import random

import pytest

from otel_memory.trend import MemoryTrend, TrendTracker

MB = 1024 * 1024


def test_steady_growth_is_increasing_with_its_slope_average_and_peak() -> None:
    tracker = TrendTracker(window_s=600)
    for i in range(60):
        tracker.add(10.0 * i, 100 * MB + i * 100_000)
    report = tracker.report()
    assert report.trend is MemoryTrend.INCREASING
    assert report.growth_bytes_per_s == pytest.approx(10_000)
    assert report.growth_over_window_bytes == pytest.approx(10_000 * 590)
    assert report.average_bytes == pytest.approx(100 * MB + 29.5 * 100_000)
    assert report.peak_bytes == 100 * MB + 59 * 100_000
    assert report.samples == 60 and report.window_s == 590


def test_falling_usage_is_decreasing() -> None:
    tracker = TrendTracker(window_s=600)
    for i in range(30):
        tracker.add(float(i), 500 * MB - i * MB)
    assert tracker.report().trend is MemoryTrend.DECREASING


def test_noise_inside_the_band_is_stable_and_two_points_do_not_make_a_trend() -> None:
    rng = random.Random(1)
    tracker = TrendTracker(window_s=600)
    for i in range(100):
        tracker.add(float(i), 200 * MB + rng.randrange(-MB, MB))
    assert tracker.report().trend is MemoryTrend.STABLE
    two = TrendTracker(window_s=600)
    two.add(0.0, 100 * MB)
    two.add(1.0, 300 * MB)
    assert two.report().trend is MemoryTrend.STABLE      # fewer than min_samples


def test_a_single_spike_does_not_turn_a_flat_window_into_growth() -> None:
    tracker = TrendTracker(window_s=600)
    for i in range(50):
        tracker.add(float(i), 300 * MB + (40 * MB if i == 49 else 0))
    report = tracker.report()
    assert report.growth_bytes_per_s < 40 * MB / 49      # far below a two-point estimate
    assert report.peak_bytes == 340 * MB


def test_old_samples_leave_the_window_and_clear_forgets_all() -> None:
    tracker = TrendTracker(window_s=60)
    for i in range(100):
        tracker.add(float(i), MB * (1000 - i if i < 50 else 950))
    report = tracker.report()
    assert report.samples == 61 and report.trend is MemoryTrend.STABLE
    tracker.clear()
    empty = tracker.report()
    assert empty.samples == 0 and empty.peak_bytes == 0 and empty.trend is MemoryTrend.STABLE


def test_a_bad_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s=0; expected a positive number of seconds"):
        TrendTracker(window_s=0)


def test_clear_in_a_forked_child_does_not_wait_for_a_lock_held_at_the_fork() -> None:
    import os
    import signal
    import threading

    tracker = TrendTracker(window_s=600)
    tracker.add(0.0, 100 * MB)
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:       # a monitoring thread inside add() when the fork happens
        with tracker._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:   # the child: the holder thread does not exist here
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(5)                # a deadlock ends the child with SIGALRM
        tracker.clear()
        tracker.add(1.0, 50 * MB)
        os._exit(0 if tracker.report().samples == 1 and tracker.report().peak_bytes == 50 * MB else 1)
    release.set()
    holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert tracker.report().samples == 1           # the parent's window is untouched
