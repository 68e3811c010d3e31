"""Panel factories: every panel gets the datasource variable, a unit and a description.

Panels are laid out in rows of a Grafana 10+ dashboard (``type: row`` panels, never the
legacy ``rows`` list); ``Layout`` assigns grid positions so definitions only say what to show.

Example::

    layout = Layout()
    layout.row("Memory")
    layout.add(timeseries("RSS", "Resident set size.", "bytes", [target(expr, "{{instance}}")]))
    panels = layout.panels
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grafanalib import core

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PRESSURE_MAPPINGS = [{
    "type": "value",
    "options": {
        "0": {"text": "LOW", "color": "green", "index": 0},
        "1": {"text": "MODERATE", "color": "yellow", "index": 1},
        "2": {"text": "HIGH", "color": "orange", "index": 2},
        "3": {"text": "CRITICAL", "color": "red", "index": 3},
    },
}]
TREND_MAPPINGS = [{
    "type": "value",
    "options": {
        "-1": {"text": "decreasing", "color": "green", "index": 0},
        "0": {"text": "stable", "color": "blue", "index": 1},
        "1": {"text": "increasing", "color": "orange", "index": 2},
    },
}]
_THRESHOLDS = [core.Threshold("green", 0, 0.0)]


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and how its series are named in the legend.

    Example::

        Query('sum by (job) (memory_peak_bytes)', "{{job}}")
    """

    expr: str
    legend: str = ""


def target(expr: str, legend: str = "") -> Query:
    """A panel query; the legend uses Grafana's ``{{label}}`` syntax."""
    return Query(expr, legend)


def _targets(queries: list[Query]) -> list[core.Target]:
    return [core.Target(expr=query.expr, legendFormat=query.legend, refId=chr(ord("A") + index),
                        datasource=DATASOURCE, intervalFactor=1, step=None)
            for index, query in enumerate(queries)]


def timeseries(title: str, description: str, unit: str, queries: list[Query], *,
               width: int = 12, stacked: bool = False, mappings: list[dict[str, Any]] | None = None,
               line_interpolation: str = "linear", min_value: int | None = None,
               max_value: int | None = None) -> core.Panel:
    """A time series panel."""
    return core.TimeSeries(
        title=title, description=description, unit=unit, dataSource=DATASOURCE,
        targets=_targets(queries), gridPos=core.GridPos(h=8, w=width, x=0, y=0),
        stacking={"mode": "normal", "group": "A"} if stacked else {"mode": "none"},
        fillOpacity=20 if stacked else 10, mappings=mappings or [], valueMin=min_value,
        valueMax=max_value, lineInterpolation=line_interpolation, legendDisplayMode="list",
        tooltipMode="multi", thresholds=_THRESHOLDS, maxDataPoints=None)


def stat(title: str, description: str, unit: str, queries: list[Query], *, width: int = 6,
         mappings: list[dict[str, Any]] | None = None, decimals: int | None = None) -> core.Panel:
    """A stat panel showing the last value of each series."""
    return core.Stat(
        title=title, description=description, format=unit, dataSource=DATASOURCE,
        targets=_targets(queries), gridPos=core.GridPos(h=4, w=width, x=0, y=0),
        reduceCalc="lastNotNull", mappings=mappings or [], decimals=decimals, graphMode="area",
        thresholds=_THRESHOLDS, maxDataPoints=None)


@dataclass
class Layout:
    """Places panels left to right in rows of 24 grid units, starting a new line when full.

    Example::

        layout = Layout()
        layout.row("Pools")
        layout.add(panel)
    """

    panels: list[core.Panel] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _line_height: int = 0

    def row(self, title: str) -> None:
        """Start a row (a collapsible section header) on a new line."""
        self._newline()
        self.panels.append(core.RowPanel(title=title, gridPos=core.GridPos(h=1, w=24, x=0, y=self._y),
                                         collapsed=False))
        self._y += 1

    def add(self, *panels: core.Panel) -> None:
        """Add panels after the previous ones, wrapping at 24 grid units."""
        for panel in panels:
            position: core.GridPos = panel.gridPos
            if self._x + position.w > 24:
                self._newline()
            panel.gridPos = core.GridPos(h=position.h, w=position.w, x=self._x, y=self._y)
            self._x += position.w
            self._line_height = max(self._line_height, position.h)
            self.panels.append(panel)

    def _newline(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0


def legend(*labels: str, text: str = "") -> str:
    """A legend naming the instance, then ``labels``, then ``text``: ``{{instance}} {{pool_name}} p99``."""
    parts = ["{{" + name + "}}" for name in ("instance", *labels)]
    return " ".join([*parts, text] if text else parts)
