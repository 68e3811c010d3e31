"""The dashboards: reproducible from the catalogue, and every panel passes the checks of
grafana/dashboard-linter (written as tests, since the linter cannot be installed here)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_memory import catalog
from otel_memory.catalog import Instrument
from otel_memory.cli import main
from otel_memory.dashboards import DASHBOARDS, PromQL, build_dashboard, write_dashboards
from otel_memory.dashboards.analysis import enclosing_function, metric_occurrences, ranges, selector_at
from tests.conftest import ROOT, require_tool

DASHBOARD_DIR = ROOT / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana unit ids the panels may use (from Grafana's unit catalogue).
GRAFANA_UNITS = {"bytes", "decbytes", "Bps", "percent", "percentunit", "s", "ms", "short", "none",
                 "ops", "reqps", "cps"}
RATE_FUNCTIONS = {"rate", "irate", "increase"}


def _committed() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in model["panels"] if panel["type"] != "row"]


def _all_panels() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{name}: {panel['title']}", panel) for name, model in _committed().items()
            for panel in _panels(model)]


def _counter_series(prefix: str = "") -> set[str]:
    names = set()
    for spec in catalog.ALL:
        if spec.instrument is Instrument.OBSERVABLE_COUNTER:
            names.add(prefix + spec.prometheus_name)
        elif spec.instrument is Instrument.HISTOGRAM:
            names |= {prefix + spec.prometheus_name + suffix for suffix in ("_bucket", "_sum", "_count")}
    return names


def _catalogue_series(prefix: str = "") -> set[str]:
    return {prefix + spec.prometheus_name for spec in catalog.ALL
            if spec.instrument is not Instrument.HISTOGRAM} | _counter_series(prefix)


PANELS = _all_panels()


def test_committed_dashboards_are_what_the_generator_writes(tmp_path: Path) -> None:
    written = write_dashboards(tmp_path)
    assert sorted(path.name for path in written) == sorted(_committed()), \
        "dashboards/ holds other files than the generator writes; run `otel-memory dashboards`"
    for path in written:
        assert (DASHBOARD_DIR / path.name).read_text() == path.read_text(), \
            f"dashboards/{path.name} is stale; run `otel-memory dashboards --out dashboards`"


def test_the_cli_writes_dashboards_with_the_given_datasource_and_prefix(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]
                                                                          ) -> None:
    assert main(["dashboards", "--out", str(tmp_path), "--datasource-uid", "mimir-eu",
                 "--prefix", "shop_"]) == 0
    assert "wrote" in capsys.readouterr().out
    for path in tmp_path.glob("*.json"):
        model = json.loads(path.read_text())
        variable = next(v for v in model["templating"]["list"] if v["name"] == "datasource")
        assert variable["current"]["value"] == "mimir-eu"
        for panel in _panels(model):
            for target in panel["targets"]:
                names = {name for _, name in metric_occurrences(target["expr"])}
                assert names and names <= _catalogue_series("shop_"), (panel["title"], names)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"prefix": "9lives"}, "metric prefix '9lives'"),
    ({"prefix": "my-app_"}, "metric prefix 'my-app_'"),
    ({"datasource_uid": "has space"}, "datasource uid 'has space'"),
    ({"datasource_uid": ""}, "datasource uid ''"),
])
def test_bad_options_are_refused_with_what_was_expected(tmp_path: Path, kwargs: dict[str, str],
                                                        message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        write_dashboards(tmp_path, **kwargs)
    assert not list(tmp_path.glob("*.json"))


def test_dashboards_are_grafana_10_models_without_legacy_rows() -> None:
    models = _committed()
    assert {model["uid"] for model in models.values()} == {d.uid for d in DASHBOARDS}
    for name, model in models.items():
        assert model["schemaVersion"] >= 39, name
        assert "rows" not in model, f"{name} uses the legacy row layout"
        assert model["title"] and model["description"], name
        ids = [panel["id"] for panel in model["panels"]]
        assert len(ids) == len(set(ids)), f"{name} has duplicate panel ids"
        for panel in model["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, (name, panel["title"])
            if panel["type"] == "row":
                assert panel["panels"] == [] and not panel["collapsed"]
        _assert_no_overlap(name, model["panels"])


def _assert_no_overlap(name: str, panels: list[dict[str, Any]]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{name}: {panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_datasource_job_and_instance_variables() -> None:
    for name, model in _committed().items():
        variables = {variable["name"]: variable for variable in model["templating"]["list"]}
        assert list(variables) == ["datasource", "job", "instance"], name
        datasource = variables["datasource"]
        assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
        assert datasource["current"]["value"] == "prometheus"
        for label in ("job", "instance"):
            variable = variables[label]
            assert variable["type"] == "query", (name, label)
            assert variable["datasource"] == DATASOURCE, (name, label)
            assert variable["multi"] and variable["includeAll"], (name, label)
            query = variable["query"]["query"]
            assert re.fullmatch(rf"label_values\((\w+)(\{{.*\}})?, {label}\)", query), query
            assert {n for _, n in metric_occurrences(query[len("label_values("):-len(f", {label})")])} \
                <= _catalogue_series()
        assert '$job' in variables["instance"]["query"]["query"], "instance must follow the job filter"


@pytest.mark.parametrize(("where", "panel"), PANELS, ids=[where for where, _ in PANELS])
def test_panel_has_datasource_title_description_and_unit(where: str, panel: dict[str, Any]) -> None:
    assert panel["datasource"] == DATASOURCE, where
    assert panel["title"].strip(), where
    assert len(panel.get("description", "")) >= 20, f"{where}: a description says what the panel shows"
    unit = panel["fieldConfig"]["defaults"].get("unit")
    assert unit in GRAFANA_UNITS, f"{where}: unit {unit!r} is not a Grafana unit id"
    assert panel["targets"], where
    ref_ids = [target["refId"] for target in panel["targets"]]
    assert len(ref_ids) == len(set(ref_ids)), where
    for target in panel["targets"]:
        assert target["datasource"] == DATASOURCE, where
        assert target["legendFormat"], f"{where}: every series needs a legend"


def query_problems(expr: str) -> list[str]:
    """What the dashboard-linter rules find wrong with one panel query."""
    problems = []
    counters, known = _counter_series(), _catalogue_series()
    occurrences = metric_occurrences(expr)
    if not occurrences:
        problems.append("selects no metric")
    if set(ranges(expr)) - {"$__rate_interval"}:
        problems.append(f"range other than $__rate_interval: {ranges(expr)}")
    for position, name in occurrences:
        if name not in known:
            problems.append(f"{name} is not a catalogue metric")
        matchers = selector_at(expr, position)
        if 'job=~"$job"' not in matchers or 'instance=~"$instance"' not in matchers:
            problems.append(f"{name} is not filtered by the job and instance variables")
        function = enclosing_function(expr, position)
        if name in counters and function not in RATE_FUNCTIONS:
            problems.append(f"counter {name} outside rate/increase")
        if name not in counters and function in RATE_FUNCTIONS:
            problems.append(f"{function}() of gauge {name}")
    return problems


@pytest.mark.parametrize(("where", "panel"), PANELS, ids=[where for where, _ in PANELS])
def test_panel_queries_follow_the_promql_rules(where: str, panel: dict[str, Any]) -> None:
    for target in panel["targets"]:
        assert query_problems(target["expr"]) == [], f"{where}: {target['expr']}"


def test_the_promql_rules_catch_bad_queries() -> None:
    counter = catalog.MEMORY_POOL_BORROWS.prometheus_name
    gauge = catalog.MEMORY_POOL_SIZE.prometheus_name
    ok = '{job=~"$job", instance=~"$instance"}'
    assert query_problems(f"sum by (instance) (rate({counter}{ok}[$__rate_interval]))") == []
    assert query_problems(f"sum by (instance) ({counter}{ok})") == [
        f"counter {counter} outside rate/increase"]
    assert query_problems(f"rate({counter}{ok}[5m])") == ["range other than $__rate_interval: ['5m']"]
    assert query_problems(f"rate({gauge}{ok}[$__rate_interval])") == [f"rate() of gauge {gauge}"]
    assert query_problems(f'max({gauge}{{job=~"$job"}})') == [
        f"{gauge} is not filtered by the job and instance variables"]
    assert query_problems(f"max(not_an_otel_memory_metric{ok})") == [
        "not_an_otel_memory_metric is not a catalogue metric"]


def test_every_catalogue_metric_is_on_a_dashboard() -> None:
    used = {name for _, panel in PANELS for target in panel["targets"]
            for _, name in metric_occurrences(target["expr"])}
    missing = [spec.name for spec in catalog.ALL
               if not used & {spec.prometheus_name + suffix for suffix in ("", "_bucket", "_sum", "_count")}]
    assert not missing, f"catalogue metrics without a panel: {missing}"


def test_every_query_parses_in_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = []
    for index, (_, panel) in enumerate(PANELS):
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$job", ".+")
            rules.append({"record": f"dashboard:query_{index}_{target['refId']}",
                          "expr": expr.replace("$instance", ".+")})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_prefix_reaches_every_query() -> None:
    for definition in DASHBOARDS:
        model = build_dashboard(definition, prefix="team_a:")
        for panel in _panels(model):
            for target in panel["targets"]:
                names = {name for _, name in metric_occurrences(target["expr"])}
                assert names <= _catalogue_series("team_a:"), (panel["title"], names)


def test_promql_refuses_what_prometheus_would_not_have() -> None:
    q = PromQL(prefix="")
    with pytest.raises(ValueError, match="is a histogram; expected a suffix"):
        q.name(catalog.MEMORY_POOL_WAIT_TIME)
    with pytest.raises(ValueError, match="is not a histogram"):
        q.name(catalog.MEMORY_PEAK, "_bucket")
    with pytest.raises(ValueError, match="only counters have a rate"):
        q.rate(catalog.MEMORY_PEAK)
    with pytest.raises(ValueError, match="is not the catalogue's entry"):
        q.name(dataclasses.replace(catalog.MEMORY_PEAK, unit="s"))
    assert q.name(catalog.MEMORY_POOL_WAIT_TIME, "_bucket") == \
        catalog.MEMORY_POOL_WAIT_TIME.prometheus_name + "_bucket"


def test_metric_names_are_read_back_from_expressions() -> None:
    borrows = catalog.MEMORY_POOL_BORROWS.prometheus_name
    size = catalog.MEMORY_POOL_SIZE.prometheus_name
    expr = (f'sum by (instance, pool_name) (rate({borrows}{{job=~"$job", pool_name!~"a|b"}}[5m])) '
            f"/ on (instance) group_left max without (le) ({size}) > 0.5 * 1e3")
    assert [name for _, name in metric_occurrences(expr)] == [borrows, size]
    [(borrows_at, _), (size_at, _)] = metric_occurrences(expr)
    assert enclosing_function(expr, borrows_at) == "rate"
    assert enclosing_function(expr, size_at) == "max"
    assert selector_at(expr, borrows_at) == 'job=~"$job", pool_name!~"a|b"'
    assert selector_at(expr, size_at) == ""
    assert ranges(expr) == ["5m"]
