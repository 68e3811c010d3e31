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


def _naming_notes() -> list[str]:
    """Why some names are what they are, from the catalogue's own entries."""
    shared = ", ".join(f"`{spec.name}`" for spec in catalog.ALL if spec.shared_with == catalog.SYSTEM_METRICS)
    aliases = "; ".join(f"`{spec.alias}` is a recording rule over `{spec.prometheus_name}`"
                        for spec in catalog.ALL if spec.alias)
    linted = ", ".join(f"`{spec.prometheus_name}` ({spec.promtool_problem})"
                       for spec in catalog.ALL if spec.promtool_problem)
    return [
        "## Naming decisions",
        "",
        f"- Semantic-convention names where the conventions define the signal; the meter's schema URL "
        f"is `{catalog.SCHEMA_URL}`. `container.memory.usage` and `container.memory.working_set` are "
        "also cAdvisor's names in Prometheus: select them by `job`.",
        f"- `{catalog.MEMORY_UTILIZATION.name}` is in percent (`%`), not the ratio (`1`) of "
        "`process.memory.utilization`: with unit `1` the Python Prometheus exporter names it "
        "`memory_utilization` and Prometheus's OTLP receiver (and the Collector) "
        "`memory_utilization_ratio`, so a dashboard or rule would work on one path only. With `%` both "
        f"paths say `{catalog.MEMORY_UTILIZATION.prometheus_name}`, the name the rules and dashboards "
        "have always used.",
        f"- Original design names the exporter cannot give without failing `promtool check metrics`: "
        f"{aliases} in `alerts/otel-memory.rules.yml` (load it, or query the exported name).",
        "- A semantic-convention name promtool's lint dislikes, kept as the conventions define it: "
        f"{linted}.",
        f"- {shared} are reported by {catalog.SYSTEM_METRICS} too. Beside it, otel_memory leaves them to "
        "it while it is instrumented (one INFO line says so), so the exposition has one HELP line per "
        "family; `MEMORY_SEMCONV_SIGNALS=off` never reports them, `=on` always does "
        "([configuration](configuration.md)).",
        "",
    ]


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
        *_naming_notes(),
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
            if spec.shared_with:
                meaning += f" Left to {spec.shared_with} when it runs beside otel_memory."
            prometheus = f"`{spec.prometheus_name}`"
            if spec.alias:
                prometheus += f" (alias `{spec.alias}`: recording rule)"
            lines.append(
                f"| `{spec.name}` | {spec.instrument.value} | `{spec.unit}` | {attributes} | "
                f"{prometheus} | {_cell(meaning)} |")
        lines.append("")
    return "\n".join(lines)
