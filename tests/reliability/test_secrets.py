"""Secrets (short profile): a DSN password and an API key made to fail in every way, and leaked
values, are nowhere in logs, exceptions, reprs, metrics or spans."""

from __future__ import annotations

from tests.conftest import require_tool

from .profile import SHORT
from .secret_scan import API_KEY, MARKER, PASSWORD, secrets


def test_no_secret_and_no_leaked_value_leaves_the_process() -> None:
    row = secrets(SHORT, require_tool("initdb"))
    assert row.failed() == [], (row.failed(), row.figures)
    assert row.figures["leaks"] == {PASSWORD: [], API_KEY: [], MARKER: []}
    assert row.figures["bad_credentials_db"] and row.figures["scanned"] > 100
    assert set(row.figures["outcomes"].values()) >= {"OperationalError", "ConnectionTimeout", "LlmError"}
