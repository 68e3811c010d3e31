"""Dashboard assembly: template variables, Grafana 10+ JSON, and writing the files.

Each dashboard gets three variables: ``datasource`` (a Prometheus datasource, its default uid
given by the caller), ``job`` and ``instance`` (multi-select, "All" by default), so one
dashboard serves a fleet of services, workers and hosts.

Example::

    paths = write_dashboards(Path("dashboards"), datasource_uid="prometheus", prefix="")
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafanalib import core
from grafanalib._gen import DashboardEncoder

from .. import catalog as c
from .components import cache_panels, leak_panels, pool_panels
from .overview import overview_panels
from .promql import PromQL, check_prefix

SCHEMA_VERSION = 39
_LEGACY_KEYS = ("rows", "sharedCrosshair", "style", "hideControls", "gnetId", "__inputs")
_LEGACY_PANEL_KEYS = ("error", "editable", "hideTimeOverride", "transparent", "links", "transformations")
_LEGACY_TARGET_KEYS = ("target", "metric", "query", "step", "intervalFactor")
_ROW_KEYS = ("collapsed", "gridPos", "id", "panels", "title", "type")
_UID = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"


@dataclass(frozen=True)
class DashboardDefinition:
    """One dashboard: file name, uid, title, description and the function building its panels.

    Example::

        DashboardDefinition("memory-pools", "otel-memory-pools", "Pools", "...", pool_panels)
    """

    file_stem: str
    uid: str
    title: str
    description: str
    panels: Callable[[PromQL], list[core.Panel]]


DASHBOARDS: tuple[DashboardDefinition, ...] = (
    DashboardDefinition("memory-overview", "otel-memory-overview", "Memory / Overview",
                        "Process memory against its limit, pressure, PSI, trend, garbage collector and "
                        "pressure response, from otel-memory.", overview_panels),
    DashboardDefinition("memory-pools", "otel-memory-pools", "Memory / Pools",
                        "Object pools and database connection pools: occupancy, waiting, timeouts, "
                        "churn and leaked borrows, from otel-memory.", pool_panels),
    DashboardDefinition("memory-caches", "otel-memory-caches", "Memory / Caches",
                        "Memory-bounded caches: hit ratio, entries and bytes against their limits, "
                        "evictions and loads, from otel-memory.", cache_panels),
    DashboardDefinition("memory-leaks", "otel-memory-leaks", "Memory / Leaks",
                        "Leak suspects from the heap census, their growth, and the detector's cost, "
                        "from otel-memory.", leak_panels),
)


def _variables(q: PromQL, datasource_uid: str) -> list[dict[str, Any]]:
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    anchor = q.name(c.MEMORY_ALLOCATED)
    common = {"hide": 0, "includeAll": True, "multi": True, "allValue": ".+", "refresh": 2, "sort": 1,
              "regex": "", "options": [], "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "hide": 0, "includeAll": False, "multi": False, "refresh": 1, "regex": "", "options": [],
         "current": {"selected": True, "text": datasource_uid, "value": datasource_uid}},
        {**common, "name": "job", "label": "Service (job)", "type": "query", "datasource": datasource,
         "definition": f"label_values({anchor}, job)",
         "query": {"query": f"label_values({anchor}, job)", "refId": "job"}},
        {**common, "name": "instance", "label": "Instance", "type": "query", "datasource": datasource,
         "definition": f'label_values({anchor}{{job=~"$job"}}, instance)',
         "query": {"query": f'label_values({anchor}{{job=~"$job"}}, instance)', "refId": "instance"}},
    ]


def _check_uid(datasource_uid: str) -> str:
    if not datasource_uid or len(datasource_uid) > 40 or any(ch not in _UID for ch in datasource_uid):
        raise ValueError(f"datasource uid {datasource_uid!r} is not a Grafana uid; expected 1-40 "
                         "letters, digits, '-' or '_'")
    return datasource_uid


def build_dashboard(definition: DashboardDefinition, *, datasource_uid: str = "prometheus",
                    prefix: str = "") -> dict[str, Any]:
    """The Grafana JSON model of one dashboard."""
    q = PromQL(prefix=check_prefix(prefix))
    dashboard = core.Dashboard(
        title=definition.title, uid=definition.uid, description=definition.description,
        tags=["otel-memory", "memory"], panels=definition.panels(q), editable=True, refresh="30s",
        timezone="browser", graphTooltip=core.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        time=core.Time("now-1h", "now"),
    ).auto_panel_ids()
    model: dict[str, Any] = json.loads(json.dumps(dashboard, cls=DashboardEncoder))
    for key in _LEGACY_KEYS:
        model.pop(key, None)
    model["panels"] = [_modern_panel(panel) for panel in model["panels"]]
    model["schemaVersion"] = SCHEMA_VERSION
    model["templating"] = {"list": _variables(q, _check_uid(datasource_uid))}
    model["annotations"] = {"list": [{
        "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
        "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
        "type": "dashboard",
    }]}
    return model


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _modern_panel(panel: dict[str, Any]) -> dict[str, Any]:
    """Drop grafanalib's legacy and null keys; a base threshold step has value null in Grafana 10+."""
    panel = _without_nulls(panel)
    if panel.get("type") == "row":
        return {key: panel[key] for key in _ROW_KEYS}
    for key in _LEGACY_PANEL_KEYS:
        panel.pop(key, None)
    for query in panel.get("targets", []):
        for key in _LEGACY_TARGET_KEYS:
            query.pop(key, None)
    defaults = panel.get("fieldConfig", {}).get("defaults")
    if defaults is not None:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
    return panel


def write_dashboards(out_dir: Path, *, datasource_uid: str = "prometheus", prefix: str = "") -> list[Path]:
    """Write every dashboard as ``<out_dir>/<name>.json``; returns the paths written."""
    models = [(definition, build_dashboard(definition, datasource_uid=datasource_uid, prefix=prefix))
              for definition in DASHBOARDS]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for definition, model in models:
        path = out_dir / f"{definition.file_stem}.json"
        path.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
