"""Missing optional dependencies name the extra that installs them."""

from __future__ import annotations

import sys

import pytest

from otel_memory._extras import MissingExtraError, extra_of, missing_extra


@pytest.mark.parametrize(("module", "extra"), [
    ("grafanalib", "dashboards"), ("grafanalib.core", "dashboards"), ("yaml", "dashboards"),
    ("opentelemetry.sdk.metrics", "sdk"), ("opentelemetry.exporter.prometheus", "prometheus"),
    ("opentelemetry.exporter", "otlp"),
    ("prometheus_client", "prometheus"), ("opentelemetry.exporter.otlp.proto.grpc", "otlp"),
    ("httpx", "http"), ("psycopg", "db"), ("psycopg_pool", "db"), ("sqlalchemy.engine", "db"),
])
def test_each_optional_module_has_its_extra(module: str, extra: str) -> None:
    assert extra_of(module) == extra


@pytest.mark.parametrize("module", ["opentelemetry", "opentelemetry.metrics", "psutil", "pympler", "yamlish",
                                    "httpx2", None])
def test_core_and_unknown_modules_have_none(module: str | None) -> None:
    assert extra_of(module) is None


def test_the_message_says_what_to_install() -> None:
    error = missing_extra(ModuleNotFoundError("No module named 'grafanalib'", name="grafanalib"), None,
                          "otel-memory dashboards")
    assert isinstance(error, MissingExtraError) and isinstance(error, ImportError)
    assert str(error) == ("otel-memory dashboards needs grafanalib, which is not installed: "
                          "pip install 'otel-memory[dashboards]'")
    assert error.name == "grafanalib"
    demo = missing_extra(ModuleNotFoundError(name="opentelemetry.sdk"), "demo", "otel-memory demo")
    assert str(demo).endswith("pip install 'otel-memory[demo]'")


def test_a_missing_core_module_is_not_dressed_up() -> None:
    original = ModuleNotFoundError("No module named 'psutil'", name="psutil")
    assert missing_extra(original, "demo", "otel-memory demo") is original


def test_an_integration_name_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)   # as if not installed
    monkeypatch.delitem(sys.modules, "otel_memory.integration.http", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'otel-memory\[http\]'"):
        from otel_memory.integration import HttpClientPool  # noqa: F401
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "otel_memory.integration.database", raising=False)
    with pytest.raises(MissingExtraError, match=r"DatabaseConnectionPool needs psycopg.*\[db\]"):
        from otel_memory.integration import DatabaseConnectionPool  # noqa: F401
