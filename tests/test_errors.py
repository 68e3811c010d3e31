"""Exceptions: one hierarchy, ValueError where a value was wrong, and error summaries without messages."""

from __future__ import annotations

import pytest

from otel_memory import errors


@pytest.mark.parametrize("error", [errors.ConfigError, errors.MemoryPressureRejected, errors.PoolTimeout,
                                   errors.PoolExhausted, errors.PoolClosed, errors.EntryTooLarge,
                                   errors.CacheRefused])
def test_every_error_is_an_otel_memory_error(error: type[Exception]) -> None:
    assert issubclass(error, errors.OtelMemoryError)


def test_errors_about_wrong_values_are_value_errors() -> None:
    assert issubclass(errors.ConfigError, ValueError) and issubclass(errors.EntryTooLarge, ValueError)
    assert not issubclass(errors.PoolTimeout, ValueError)


def test_error_summary_gives_type_and_location_never_the_message() -> None:
    try:
        {"user": 1}["token=s3cr3t"]
    except KeyError as error:
        summary = errors.error_summary(error)
    assert summary.startswith("KeyError at test_errors.py:") and "s3cr3t" not in summary
    assert errors.error_summary(ValueError("never raised: no traceback")) == "ValueError"
