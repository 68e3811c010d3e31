"""Grafana dashboards generated from the metric catalogue with grafanalib.

``otel-memory dashboards --out DIR`` writes them; the committed ``dashboards/*.json`` are that
command's output, and a test fails when they differ. ``promql`` and ``analysis`` need no
grafanalib, so the alert rules can share them; the rest is imported on first use.

Example::

    from pathlib import Path
    from otel_memory.dashboards import write_dashboards

    write_dashboards(Path("dashboards"), datasource_uid="prometheus", prefix="")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .promql import PromQL

if TYPE_CHECKING:
    from .build import DASHBOARDS, DashboardDefinition, build_dashboard, write_dashboards

__all__ = ["DASHBOARDS", "DashboardDefinition", "PromQL", "build_dashboard", "write_dashboards"]
_FROM_BUILD = {"DASHBOARDS", "DashboardDefinition", "build_dashboard", "write_dashboards"}


def __getattr__(name: str) -> Any:
    if name in _FROM_BUILD:
        from . import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
