"""Dashboards and alert rules against a real Prometheus scraping a real instrumented app, and
alerts travelling to a real Alertmanager running alerts/alertmanager.yml.

The app (tests/e2e/prometheus_app.py) exercises every capability; Prometheus scrapes it every
second and evaluates the generated rules with ``for`` durations scaled by 0.01 (the generator's
``for_scale``). The test asserts that every dashboard query and every rule evaluates without
error, that every metric name they use exists in that Prometheus, that Grafana's variable
queries find the job and instance, and that alerts reach Alertmanager, routed by severity, with
warnings of an instance inhibited while its critical alert fires.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_memory import catalog
from otel_memory.alerts import alert_rules, alias_rules, write_alert_rules
from otel_memory.dashboards.analysis import metric_names
from tests.conftest import ROOT, require_tool

pytestmark = pytest.mark.e2e

FOR_SCALE = 0.01
RATE_INTERVAL = "5s"  # what Grafana's $__rate_interval is at a 1 s scrape interval, rounded up
CRITICAL_ALERT = "OtelMemoryPressureCritical"
DEFAULT_TEMPLATE = "/usr/share/prometheus/alertmanager/default.tmpl"


@dataclass
class Stack:
    """The running app, Prometheus and Alertmanager."""

    prometheus: str
    alertmanager: str
    job: str
    facts: dict[str, Any]


def _alertmanager_command(binary: str) -> list[str]:
    """How to start Debian's Alertmanager unpacked with ``dpkg -x``.

    Debian's build reads its default notification template from the fixed path
    /usr/share/prometheus/alertmanager/default.tmpl. When the package is only unpacked under
    .tools/, that file is there instead, so Alertmanager runs in a private mount namespace where
    .tools/root/usr/share is overlaid on /usr/share; nothing outside that process changes.
    """
    if Path(DEFAULT_TEMPLATE).exists():
        return [binary]
    share = Path(binary).resolve().parent.parent / "share"
    if not (share / DEFAULT_TEMPLATE.removeprefix("/usr/share/")).exists():
        pytest.fail(f"{binary} needs {DEFAULT_TEMPLATE}, which neither the system nor {share} has")
    unshare = shutil.which("unshare")
    wrapper = [unshare or "unshare", "--mount", "--propagation", "private",
               *([] if os.geteuid() == 0 else ["--map-root-user"]),
               "sh", "-c", 'mount -t overlay overlay -o "lowerdir=$0:/usr/share" /usr/share && exec "$@"',
               str(share)]
    probe = subprocess.run([*wrapper, "test", "-e", DEFAULT_TEMPLATE], capture_output=True, text=True,
                           check=False, timeout=30) if unshare else None
    if probe is None or probe.returncode != 0:
        message = (f"cannot give {binary} its {DEFAULT_TEMPLATE}: needs unshare and an overlay mount "
                   f"({probe.stderr.strip() if probe else 'unshare is missing'})")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return [*wrapper, binary]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, body: Any = None, form: dict[str, str] | None = None) -> Any:
    if form is not None:
        data, kind = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    else:
        data, kind = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url, data=data, headers={"Content-Type": kind}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
        return json.loads(text) if text else None


def _wait_for(what: str, check: Callable[[], Any], processes: list[subprocess.Popen[str]],
              timeout_s: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"{process.args[0]} exited with {process.returncode} while waiting "
                                     f"for {what}: {_log_of(process)}")
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError, KeyError) as error:
            last_error = error
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


_LOGS: dict[int, Path] = {}


def _started(command: list[str], log: Path, **options: Any) -> subprocess.Popen[str]:
    """Start ``command`` with its stderr in ``log`` (a pipe nobody reads could fill and block it)."""
    with log.open("w") as stderr:
        process = subprocess.Popen(command, text=True, stderr=stderr, **options)
    _LOGS[process.pid] = log
    return process


def _log_of(process: subprocess.Popen[str]) -> str:
    log = _LOGS.get(process.pid)
    return log.read_text()[-3000:] if log and log.exists() else ""


def _query(stack: Stack, expr: str) -> Any:
    answer = _post(f"{stack.prometheus}/api/v1/query", form={"query": expr})
    assert answer["status"] == "success", f"{expr}: {answer}"
    return answer["data"]["result"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = require_tool("prometheus")
    alertmanager_bin = require_tool("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("prometheus-stack")
    processes: list[subprocess.Popen[str]] = []
    try:
        app = _started([sys.executable, "-m", "tests.e2e.prometheus_app"], tmp / "app.log", cwd=ROOT,
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        processes.append(app)
        assert app.stdout is not None
        facts = json.loads(app.stdout.readline() or "{}")
        assert "port" in facts, f"the app did not start: {_log_of(app)}"
        job = facts["service"]

        am_port, prom_port = _free_port(), _free_port()
        processes.append(_started(
            [*_alertmanager_command(alertmanager_bin),
             f"--config.file={ROOT / 'alerts' / 'alertmanager.yml'}",
             f"--storage.path={tmp / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{am_port}",
             "--cluster.listen-address=", "--log.level=warn"],
            tmp / "alertmanager.log", stdout=subprocess.DEVNULL))

        [rules_file] = write_alert_rules(tmp / "rules", for_scale=FOR_SCALE)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_file)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": job,
                                "static_configs": [{"targets": [f"127.0.0.1:{facts['port']}"]}]}],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        processes.append(_started(
            [prometheus_bin, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            tmp / "prometheus.log", stdout=subprocess.DEVNULL))

        running = Stack(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}", job, facts)
        _wait_for("Alertmanager", lambda: urllib.request.urlopen(f"{running.alertmanager}/-/ready",
                                                                 timeout=2).status == 200, processes)
        _wait_for("Prometheus", lambda: urllib.request.urlopen(f"{running.prometheus}/-/ready",
                                                               timeout=2).status == 200, processes)
        # Enough history for rates, and the critical pressure alert firing in Prometheus.
        _wait_for("the critical alert to fire in Prometheus", lambda: any(
            alert["labels"]["alertname"] == CRITICAL_ALERT and alert["state"] == "firing"
            for alert in _get(f"{running.prometheus}/api/v1/alerts")["data"]["alerts"]), processes)
        _wait_for("ten seconds of samples", lambda: _query(
            running, f'count_over_time({catalog.MEMORY_ALLOCATED.prometheus_name}{{job="{job}"}}[1m]) >= 10'),
            processes)
        yield running
    finally:
        for process in reversed(processes):
            if process.stdin:
                process.stdin.close()
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()


def _dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{path.name}: {panel['title']} {target['refId']}", target["expr"]))
    return queries


def _as_grafana_sends_it(expr: str, job: str) -> str:
    return (expr.replace("$__rate_interval", RATE_INTERVAL).replace('"$job"', f'"{job}"')
            .replace('"$instance"', '".+"'))


def _names_this_host_cannot_produce(facts: dict[str, Any]) -> set[str]:
    absent = set()
    if not facts["container_limit"]:
        absent |= {spec.prometheus_name for spec in (catalog.CONTAINER_MEMORY_USAGE,
                                                      catalog.CONTAINER_MEMORY_WORKING_SET,
                                                      catalog.MEMORY_CONTAINER_OOM_KILLS)}
    if not facts["psi"]:
        absent.add(catalog.MEMORY_PSI_STALL.prometheus_name)
    return absent


def test_every_dashboard_query_evaluates_and_returns_data(stack: Stack) -> None:
    queries = _dashboard_queries()
    assert len(queries) > 50
    absent = _names_this_host_cannot_produce(stack.facts)
    empty = [where for where, expr in queries
             if not _query(stack, _as_grafana_sends_it(expr, stack.job)) and not metric_names(expr) & absent]
    assert not empty, f"panels without data although the app does everything they show: {empty}"


def test_every_alert_rule_evaluates_without_error(stack: Stack) -> None:
    for rule in alert_rules():
        _query(stack, rule.expr)
    groups = _get(f"{stack.prometheus}/api/v1/rules")["data"]["groups"]
    evaluated = {rule["name"]: rule for group in groups for rule in group["rules"]}
    recorded = {rule["record"] for rule in alias_rules()}
    assert set(evaluated) == {rule.name for rule in alert_rules()} | recorded
    for name, rule in evaluated.items():
        assert rule["health"] == "ok", f"{name}: {rule.get('lastError')}"


def test_every_metric_name_in_dashboards_and_rules_exists_in_prometheus(stack: Stack) -> None:
    used = set()
    for _, expr in _dashboard_queries():
        used |= metric_names(expr)
    for rule in alert_rules():
        used |= metric_names(rule.expr)
    expected = used - _names_this_host_cannot_produce(stack.facts)
    assert len(expected) > 60
    missing = [name for name in sorted(expected)
               if not _get(f"{stack.prometheus}/api/v1/series?"
                           + urllib.parse.urlencode({"match[]": f'{name}{{job="{stack.job}"}}'}))["data"]]
    assert not missing, f"used by dashboards or rules but not in Prometheus: {missing}"


def test_the_original_allocation_count_name_is_recorded_from_the_exported_one(stack: Stack) -> None:
    alias, exported = "memory_allocation_count", catalog.MEMORY_ALLOCATED_BLOCKS.prometheus_name
    recorded = _wait_for(f"{alias} recorded", lambda: _query(stack, f'{alias}{{job="{stack.job}"}}'), [])
    [series] = recorded
    assert series["metric"]["instance"] == f"127.0.0.1:{stack.facts['port']}"
    assert series["metric"]["otel_scope_name"] == "otel_memory"
    assert float(series["value"][1]) > 1000
    assert not _query(stack, f'{exported}{{job="{stack.job}"}} unless on() {alias}')


def test_a_scrape_of_every_capability_passes_promtool_check_metrics(stack: Stack) -> None:
    promtool = require_tool("promtool")
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.facts['port']}/metrics", timeout=10) as response:
        text = response.read().decode()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    assert catalog.DB_CLIENT_CONNECTION_COUNT.prometheus_name in families   # the pools are in this scrape
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=60, check=False)
    problems = (lint.stdout + lint.stderr).strip().splitlines()
    # Only the semantic-convention name the catalogue documents as disliked by promtool's lint.
    documented = {f"{spec.prometheus_name} {spec.promtool_problem}"
                  for spec in catalog.ALL if spec.promtool_problem}
    assert set(problems) <= documented, problems


def test_grafana_variable_queries_find_the_job_and_instance(stack: Stack) -> None:
    anchor = catalog.MEMORY_ALLOCATED.prometheus_name
    dashboard = json.loads((ROOT / "dashboards" / "memory-overview.json").read_text())
    variables = {variable["name"]: variable["query"]["query"] for variable in dashboard["templating"]["list"]
                 if variable["type"] == "query"}
    assert variables["job"] == f"label_values({anchor}, job)"
    jobs = _get(f"{stack.prometheus}/api/v1/label/job/values?" + urllib.parse.urlencode({"match[]": anchor}))
    assert stack.job in jobs["data"]
    selector = variables["instance"][len("label_values("):-len(", instance)")].replace("$job", stack.job)
    instances = _get(f"{stack.prometheus}/api/v1/label/instance/values?"
                     + urllib.parse.urlencode({"match[]": selector}))
    assert instances["data"] == [f"127.0.0.1:{stack.facts['port']}"]


def _alertmanager_alerts(stack: Stack, alertname: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
    return list(_get(f"{stack.alertmanager}/api/v2/alerts?{query}"))


def test_the_critical_alert_travels_to_alertmanager_and_is_routed_by_severity(stack: Stack) -> None:
    alerts = _wait_for("the critical alert in Alertmanager",
                       lambda: _alertmanager_alerts(stack, CRITICAL_ALERT), [], timeout_s=30)
    [alert] = alerts
    assert alert["labels"]["job"] == stack.job
    assert alert["labels"]["instance"] == f"127.0.0.1:{stack.facts['port']}"
    assert alert["labels"]["severity"] == "critical"
    assert [receiver["name"] for receiver in alert["receivers"]] == ["critical"]
    assert alert["status"]["state"] == "active"
    assert stack.job in alert["annotations"]["description"]
    assert alert["annotations"]["runbook_url"].endswith("#memory-pressure-critical")


def test_warnings_of_an_instance_are_inhibited_while_its_critical_alert_fires(stack: Stack) -> None:
    [critical] = _wait_for("the critical alert in Alertmanager",
                           lambda: _alertmanager_alerts(stack, CRITICAL_ALERT), [], timeout_s=30)
    same = {"alertname": "E2eWarning", "severity": "warning", "job": stack.job,
            "instance": critical["labels"]["instance"]}
    other = {**same, "alertname": "E2eWarningElsewhere", "instance": "10.9.9.9:9464"}
    _post(f"{stack.alertmanager}/api/v2/alerts", [{"labels": same}, {"labels": other}])
    [inhibited] = _wait_for("the synthetic warning", lambda: _alertmanager_alerts(stack, "E2eWarning"), [])
    assert inhibited["status"]["state"] == "suppressed"
    assert inhibited["status"]["inhibitedBy"], inhibited["status"]
    [elsewhere] = _wait_for("the other warning",
                            lambda: _alertmanager_alerts(stack, "E2eWarningElsewhere"), [])
    assert elsewhere["status"]["state"] == "active"
    assert [receiver["name"] for receiver in elsewhere["receivers"]] == ["warning"]
