"""Which extra to install when an optional dependency is missing.

The core install is the OpenTelemetry API, psutil and pympler. Everything else comes with an
extra; a command or name that needs one says which, instead of ending in a bare
ModuleNotFoundError.

Example::

    try:
        from .dashboards import write_dashboards
        write_dashboards(out)
    except ModuleNotFoundError as error:
        raise missing_extra(error, "dashboards", "otel-memory dashboards") from None
"""

from __future__ import annotations

#: Top-level modules of the optional dependencies and the extra that installs each.
OPTIONAL_MODULES: dict[str, str] = {
    "opentelemetry.sdk": "sdk",
    "opentelemetry.exporter": "otlp",
    "opentelemetry.exporter.otlp": "otlp",
    "opentelemetry.exporter.prometheus": "prometheus",
    "prometheus_client": "prometheus",
    "grpc": "otlp",
    "grafanalib": "dashboards",
    "yaml": "dashboards",
    "httpx": "http",
    "psycopg": "db",
    "psycopg_pool": "db",
    "sqlalchemy": "db",
}


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that installs it.

    A ModuleNotFoundError, so ``except ImportError`` still catches it.

    Example::

        MissingExtraError("otel-memory dashboards needs grafanalib, which is not installed: "
                          "pip install 'otel-memory[dashboards]'", name="grafanalib")
    """


def _optional_prefix(module: str | None) -> str | None:
    """The optional dependency ``module`` (a dotted name) belongs to, as OPTIONAL_MODULES names it."""
    found = [prefix for prefix in OPTIONAL_MODULES
             if module is not None and (module == prefix or module.startswith(prefix + "."))]
    return max(found, key=len) if found else None   # the most specific


def extra_of(module: str | None) -> str | None:
    """The extra that installs ``module`` (a dotted name), or None when it is not optional."""
    prefix = _optional_prefix(module)
    return None if prefix is None else OPTIONAL_MODULES[prefix]


def missing_extra(error: ModuleNotFoundError, extra: str | None, feature: str) -> ModuleNotFoundError:
    """A MissingExtraError saying which extra ``feature`` needs, when ``error`` is about an
    optional dependency; ``error`` itself otherwise (a missing core module is a bug to see).

    ``extra`` is the extra to suggest (e.g. ``demo``, which holds several); None suggests the
    extra of the missing module.
    """
    module = _optional_prefix(error.name)
    if module is None:
        return error
    return MissingExtraError(
        f"{feature} needs {module}, which is not installed: "
        f"pip install 'otel-memory[{extra or OPTIONAL_MODULES[module]}]'", name=error.name)
