"""Generates docs/metrics.md from the catalogue, so the reference can never drift from the code.

Example::

    otel-memory docs --out docs/metrics.md
"""

from __future__ import annotations

from . import catalog

_TITLES = {
    catalog.Group.PROCESS: "Process memory",
    catalog.Group.GC: "Garbage collector",
    catalog.Group.PRESSURE: "Pressure levels",
    catalog.Group.RESPONSE: "Pressure response and admission control",
    catalog.Group.POOL: "Object pools",
    catalog.Group.DB: "Database connection pools (semantic conventions)",
    catalog.Group.CACHE: "Caches",
    catalog.Group.LEAK: "Trends and leak detection",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_metrics_markdown() -> str:
    """The whole of docs/metrics.md."""
    lines = [
        "# Metrics",
        "",
        "Generated from the catalogue (`otel_memory/catalog/`) by `otel-memory docs --out docs/metrics.md`; "
        "a test fails when this file is stale. Prometheus names are those of the OpenTelemetry "
        "Prometheus exporter and of Prometheus's OTLP receiver (histograms add `_bucket`, "
        "`_sum` and `_count`). Metrics marked opt-in need the named configuration switch.",
        "",
    ]
    for group in catalog.Group:
        specs = [spec for spec in catalog.ALL if spec.group is group]
        if not specs:
            continue
        lines += [f"## {_TITLES[group]}", "",
                  "| Metric | Instrument | Unit | Attributes | Prometheus name | Meaning |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for spec in specs:
            attributes = ", ".join(f"`{a}`" for a in spec.attributes) or "-"
            meaning = spec.description + (" " + spec.meaning if spec.meaning else "")
            if spec.opt_in:
                meaning += f" Opt-in: `{spec.opt_in}`."
            lines.append(
                f"| `{spec.name}` | {spec.instrument.value} | `{spec.unit}` | {attributes} | "
                f"`{spec.prometheus_name}` | {_cell(meaning)} |")
        lines.append("")
    return "\n".join(lines)
