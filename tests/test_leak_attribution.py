"""Allocation-site attribution: a bounded tracemalloc window names file:line of a suspect."""

from __future__ import annotations

import os
import sys
import tracemalloc

import pytest

from otel_memory.leak.attribution import AllocationAttributor, short_path
from otel_memory.leak.census import type_name


class Blob:
    def __init__(self) -> None:
        self.payload = bytes(2000)


def allocate(held: list[Blob]) -> int:
    held.extend(Blob() for _ in range(3000))
    return sys._getframe().f_lineno - 1


@pytest.fixture(autouse=True)
def no_tracing() -> None:
    if tracemalloc.is_tracing():
        tracemalloc.stop()


def test_a_window_names_where_the_suspect_was_allocated_and_stops_tracing() -> None:
    attributor = AllocationAttributor(window_s=0.01, min_interval_s=3600)
    assert attributor.begin([type_name(Blob)]) and attributor.active and tracemalloc.is_tracing()
    held: list[Blob] = []
    line = allocate(held)
    sites = attributor.finish()
    site = sites[type_name(Blob)]
    # 3.12+: Blob's own traceback (the Blob() expression); 3.11: the line holding the most
    # memory allocated in the window, here Blob.__init__'s payload or the extend line
    assert site.split(":")[0].endswith("test_leak_attribution.py") and not os.path.isabs(site)
    assert int(site.rsplit(":", 1)[1]) in {line, Blob.__init__.__code__.co_firstlineno + 1}
    assert not tracemalloc.is_tracing() and not attributor.active
    del held


def test_windows_are_rate_limited_and_tracing_started_by_others_is_left_on() -> None:
    attributor = AllocationAttributor(window_s=0.01, min_interval_s=3600)
    assert attributor.begin(["dict"])
    assert not attributor.begin(["dict"])          # one window at a time
    attributor.finish()
    assert not attributor.begin(["dict"])          # not again within min_interval_s
    tracemalloc.start()
    other = AllocationAttributor(window_s=0.01, min_interval_s=0)
    assert other.begin(["dict"])
    other.finish()
    assert tracemalloc.is_tracing()
    tracemalloc.stop()
    assert not AllocationAttributor().begin([])


def test_paths_are_relative_to_their_sys_path_entry() -> None:
    entry = sys.path[0] if sys.path[0] else os.getcwd()
    assert short_path(os.path.join(entry, "pkg", "mod.py")) in {os.path.join("pkg", "mod.py")}
    assert short_path("/nowhere/known/file.py") == "file.py"


def test_bad_window_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="window_s=0; expected a positive number"):
        AllocationAttributor(window_s=0)
