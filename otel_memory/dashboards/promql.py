"""PromQL built from catalogue entries: names, selectors, rates and quantiles.

Every metric name in a dashboard or an alert rule comes from here, so it is always the
catalogue's ``prometheus_name`` (histograms add ``_bucket``, ``_sum`` or ``_count``), with
the optional prefix a user's pipeline adds in front.

Example::

    q = PromQL(prefix="", matchers=DASHBOARD_MATCHERS)
    q.select(catalog.MEMORY_PEAK)          # 'memory_peak_bytes{job=~"$job", instance=~"$instance"}'
    q.rate(catalog.MEMORY_POOL_BORROWS)    # 'rate(memory_pool_borrows_total{...}[$__rate_interval])'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import catalog
from ..catalog import Instrument, MetricSpec

RATE_INTERVAL = "$__rate_interval"
DASHBOARD_MATCHERS: tuple[tuple[str, str], ...] = (("job", '=~"$job"'), ("instance", '=~"$instance"'))
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
_PREFIX = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def label(attribute: str) -> str:
    """The Prometheus label name of a catalogue attribute key (``pool.name`` -> ``pool_name``)."""
    return re.sub(r"[^a-zA-Z0-9]+", "_", attribute)


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` when it can start a Prometheus metric name; ValueError otherwise."""
    if prefix and not _PREFIX.match(prefix):
        raise ValueError(f"metric prefix {prefix!r} is not valid in a Prometheus metric name; "
                         "expected letters, digits, '_' or ':' and no leading digit")
    return prefix


@dataclass(frozen=True)
class PromQL:
    """Builds expressions for one metric prefix and a fixed set of label matchers.

    Example::

        q = PromQL(prefix="myapp_")
        q.name(catalog.MEMORY_POOL_WAIT_TIME, "_bucket")   # 'myapp_memory_pool_wait_time_seconds_bucket'
    """

    prefix: str = ""
    matchers: tuple[tuple[str, str], ...] = DASHBOARD_MATCHERS
    rate_window: str = RATE_INTERVAL

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def name(self, spec: MetricSpec, suffix: str = "") -> str:
        """The exported name of ``spec``; a histogram needs one of its three suffixes."""
        if spec.instrument is Instrument.HISTOGRAM and suffix not in HISTOGRAM_SUFFIXES:
            raise ValueError(f"{spec.name} is a histogram; expected a suffix in {HISTOGRAM_SUFFIXES}")
        if spec.instrument is not Instrument.HISTOGRAM and suffix:
            raise ValueError(f"{spec.name} is not a histogram; it has no {suffix!r} series")
        if catalog.by_name(spec.name) is not spec:
            raise ValueError(f"{spec.name} is not the catalogue's entry of that name")
        return f"{self.prefix}{spec.prometheus_name}{suffix}"

    def select(self, spec: MetricSpec, suffix: str = "", **where: str) -> str:
        """``name{matchers}``; ``where`` adds equality matchers (values are PromQL strings)."""
        parts = [f"{key}{matcher}" for key, matcher in self.matchers]
        parts += [f'{key}{_matcher(value)}' for key, value in where.items()]
        return f"{self.name(spec, suffix)}{{{', '.join(parts)}}}" if parts else self.name(spec, suffix)

    def rate(self, spec: MetricSpec, suffix: str = "", *, window: str | None = None,
             function: str = "rate", **where: str) -> str:
        """``rate(selector[window])`` (or ``increase``) of a counter or histogram series."""
        if spec.instrument not in (Instrument.OBSERVABLE_COUNTER, Instrument.HISTOGRAM):
            raise ValueError(f"{spec.name} is a {spec.instrument.value}; only counters have a rate")
        return f"{function}({self.select(spec, suffix, **where)}[{window or self.rate_window}])"

    def increase(self, spec: MetricSpec, window: str, **where: str) -> str:
        """``increase(selector[window])`` of a counter."""
        return self.rate(spec, window=window, function="increase", **where)

    def quantile(self, q: float, spec: MetricSpec, by: tuple[str, ...] = ()) -> str:
        """The ``q`` quantile of a histogram over the rate window, per ``by`` labels."""
        group = ", ".join(("le", *by))
        return (f"histogram_quantile({q:g}, sum by ({group}) "
                f"({self.rate(spec, '_bucket')}))")

    def mean(self, spec: MetricSpec, by: tuple[str, ...] = ()) -> str:
        """Average observation of a histogram over the rate window, per ``by`` labels."""
        group = f" by ({', '.join(by)})" if by else ""
        return (f"sum{group} ({self.rate(spec, '_sum')}) / sum{group} ({self.rate(spec, '_count')})")


def _matcher(value: str) -> str:
    if value.startswith(("=~", "!~", "!=", "=")):
        return value
    return f'="{value}"'
