"""Flight: one loader result handed to every waiting thread."""

from __future__ import annotations

import threading

import pytest

from otel_memory.cache.loading import Flight


def test_waiters_get_the_value() -> None:
    flight = Flight()
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(flight.wait())) for _ in range(3)]
    for thread in threads:
        thread.start()
    sentinel = object()
    flight.succeed(sentinel)
    for thread in threads:
        thread.join(5)
    assert results == [sentinel] * 3


def test_waiters_get_the_exception() -> None:
    flight = Flight()
    flight.fail(LookupError("user:7"))
    with pytest.raises(LookupError, match="user:7"):
        flight.wait()
