"""Other instrumentations that report some of our metric families, and leaving those to them.

opentelemetry-instrumentation-system-metrics, which many services already run, reports
``process.memory.usage``, ``process.memory.virtual`` and ``cpython.gc.*`` under the same
semantic-convention names as we do. Two scopes exporting one name give the Prometheus
exposition two HELP lines for one family, which Prometheus's parser and ``promtool check
metrics`` reject. ``MEMORY_SEMCONV_SIGNALS`` decides:

- ``auto`` (default): every family the peer reports is left to it while it is instrumented.
  It is looked at in every collection, so the order in which ``opentelemetry-instrument``
  loads the two instrumentors does not matter; one INFO line says what was left.
- ``off``: the shared families are never reported by us (another pipeline reports them).
- ``on``: always reported, even beside the peer.

Example::

    policy = SharedFamilies(catalog.ALL, semconv_signals_mode())
    policy.left_to_peers()     # frozenset({'process.memory.usage', ...}) beside system-metrics
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping

from .catalog import SYSTEM_METRICS, MetricSpec
from .errors import ConfigError

_log = logging.getLogger("otel_memory")

SEMCONV_SIGNALS_ENV = "MEMORY_SEMCONV_SIGNALS"
MODES = ("auto", "on", "off")
SYSTEM_METRICS_MODULE = "opentelemetry.instrumentation.system_metrics"


def semconv_signals_mode(environ: Mapping[str, str] | None = None) -> str:
    """``MEMORY_SEMCONV_SIGNALS`` (auto, on or off; default auto); ConfigError names a bad value."""
    raw = (os.environ if environ is None else environ).get(SEMCONV_SIGNALS_ENV, "auto")
    value = raw.strip().lower()
    if value not in MODES:
        raise ConfigError(f"{SEMCONV_SIGNALS_ENV}={raw!r} is not valid; expected auto, on or off "
                          "(whether to report the families opentelemetry-instrumentation-system-metrics "
                          "also reports)")
    return value


def system_metrics_families(modules: Mapping[str, object] | None = None) -> frozenset[str] | None:
    """The metric names SystemMetricsInstrumentor reports now: None when it is not instrumented
    in this process (never imported here: a peer that is not loaded is not running).

    Its instance is a singleton (``_instance``) whose ``_config`` names the metrics it made
    instruments for; when that cannot be read, every name it could report is assumed.
    """
    module = (sys.modules if modules is None else modules).get(SYSTEM_METRICS_MODULE)
    instrumentor = getattr(getattr(module, "SystemMetricsInstrumentor", None), "_instance", None)
    if instrumentor is None or getattr(instrumentor, "is_instrumented_by_opentelemetry", False) is not True:
        return None
    config = getattr(instrumentor, "_config", None)
    return frozenset(config) if isinstance(config, Mapping) else frozenset({"*"})


class SharedFamilies:
    """Which of our families another instrumentation reports, per collection cycle.

    Example::

        SharedFamilies(catalog.ALL, "auto").left_to_peers()
    """

    def __init__(self, specs: Iterable[MetricSpec], mode: str,
                 peer_families: Callable[[], frozenset[str] | None] = system_metrics_families) -> None:
        if mode not in MODES:
            raise ConfigError(f"semconv signals mode {mode!r} is not valid; expected auto, on or off")
        self.shared = frozenset(spec.name for spec in specs if spec.shared_with == SYSTEM_METRICS)
        self.mode = mode
        self._peer_families = peer_families
        self._announced = False

    def left_to_peers(self) -> frozenset[str]:
        """The names we do not report in this collection; the first time there are some, one
        INFO line says which (at a collection, when the application's logging is set up)."""
        if self.mode == "on":
            return frozenset()
        if self.mode == "off":
            if not self._announced and self.shared:
                self._announced = True
                _log.info("otel_memory: %s=off: %s left to other instrumentations", SEMCONV_SIGNALS_ENV,
                          ", ".join(sorted(self.shared)))
            return self.shared
        families = self._peer_families()
        if families is None:
            return frozenset()
        left = self.shared if "*" in families else self.shared & families
        if left and not self._announced:
            self._announced = True
            _log.info("otel_memory: %s reports %s too; left to it (%s=on to report them as well)",
                      SYSTEM_METRICS, ", ".join(sorted(left)), SEMCONV_SIGNALS_ENV)
        return left
