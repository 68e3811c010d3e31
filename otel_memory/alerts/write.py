"""Writing the rule file and its promtool unit tests.

``for_scale`` multiplies every ``for`` duration: 1.0 for production, a small factor for an
end-to-end test that cannot wait minutes (the unit tests are written only at 1.0, since their
timings assume the real durations).

Example::

    write_alert_rules(Path("alerts"))                    # alerts/otel-memory.rules.yml + tests
    write_alert_rules(tmp, for_scale=0.01)               # 'for: 2m' becomes 'for: 1s'
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from .. import catalog
from ..dashboards.promql import PromQL, check_prefix
from .rules import GROUP_NAME, RUNBOOK_URL, AlertRule, alert_rules, duration
from .scenarios import INSTANCE, JOB, SCENARIOS, Scenario

RULES_FILE = "otel-memory.rules.yml"
#: The group of recording rules that give metrics their catalogue alias (the original design's
#: names the exporter cannot give, see docs/metrics.md).
ALIAS_GROUP_NAME = "otel-memory-aliases"
TESTS_FILE = "otel-memory.rules.test.yml"
_TEMPLATE = re.compile(r"\{\{ \$(labels\.(\w+)|value \| \w+) \}\}")


def _scaled(rule: AlertRule, for_scale: float) -> str:
    if rule.for_s == 0:
        return "0s"
    return duration(max(1, math.ceil(rule.for_s * for_scale)))


def check_runbook_base(base: str) -> str:
    """``base`` if it is an http(s) URL without a fragment; ValueError says what was expected."""
    if not isinstance(base, str) or not base.startswith(("http://", "https://")) or "#" in base:
        raise ValueError(f"runbook base URL {base!r} is not valid; expected an http:// or https:// URL "
                         "of docs/runbook.md without a #fragment")
    return base


def rules_document(prefix: str = "", for_scale: float = 1.0,
                   runbook_base: str = RUNBOOK_URL) -> dict[str, Any]:
    """The rule file as a Prometheus rule-file document."""
    check_runbook_base(runbook_base)
    if isinstance(for_scale, bool) or not isinstance(for_scale, (int, float)) or not 0 < for_scale <= 1:
        raise ValueError(f"for_scale={for_scale!r} is out of range; expected a number in (0, 1]")
    rules = [{
        "alert": rule.name,
        "expr": rule.expr,
        "for": _scaled(rule, for_scale),
        "labels": {"severity": rule.severity},
        "annotations": {"summary": rule.summary, "description": rule.description,
                        "runbook_url": rule.runbook_url_at(runbook_base)},
    } for rule in alert_rules(check_prefix(prefix))]
    return {"groups": [{"name": GROUP_NAME, "rules": rules},
                       {"name": ALIAS_GROUP_NAME, "rules": alias_rules(prefix)}]}


def alias_rules(prefix: str = "") -> list[dict[str, str]]:
    """A recording rule per catalogue alias: ``memory_allocation_count`` from
    ``memory_allocated_blocks``, with every label kept."""
    q = PromQL(prefix=check_prefix(prefix), matchers=())
    return [{"record": f"{prefix}{spec.alias}", "expr": q.name(spec)} for spec in catalog.ALL if spec.alias]


def _render(template: str, labels: dict[str, str], value: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        return labels[match.group(2)] if match.group(2) else value

    return _TEMPLATE.sub(substitute, template)


def _case(scenario: Scenario, rule: AlertRule, q: PromQL, runbook_base: str) -> dict[str, Any]:
    target = {"job": JOB, "instance": INSTANCE}
    series = []
    for item in scenario.series:
        labels = {**target, "otel_scope_name": "otel_memory", **dict(item.labels)}
        rendered = ", ".join(f'{key}="{value}"' for key, value in labels.items())
        series.append({"series": f"{q.name(item.spec, item.suffix)}{{{rendered}}}", "values": item.values})
    checks: list[dict[str, Any]] = [{"eval_time": f"{minute}m", "alertname": rule.name, "exp_alerts": []}
                                    for minute in scenario.silent_at]
    if scenario.fires_at is not None:
        labels = {"job": JOB} if scenario.per_job_only else {**target, **dict(scenario.labels)}
        checks.append({"eval_time": f"{scenario.fires_at}m", "alertname": rule.name, "exp_alerts": [{
            "exp_labels": {"severity": rule.severity, **labels},
            "exp_annotations": {"summary": rule.summary,
                                "description": _render(rule.description, labels, scenario.value),
                                "runbook_url": rule.runbook_url_at(runbook_base)},
        }]})
    return {"name": f"{rule.name}: {scenario.title}", "interval": "1m", "input_series": series,
            "alert_rule_test": checks}


def tests_document(prefix: str = "", runbook_base: str = RUNBOOK_URL) -> dict[str, Any]:
    """The promtool unit tests of every alert, for the rule file next to them."""
    check_runbook_base(runbook_base)
    q = PromQL(prefix=check_prefix(prefix), matchers=())
    rules = {rule.short_name: rule for rule in alert_rules(prefix)}
    missing = sorted(set(rules) - {scenario.alert for scenario in SCENARIOS if scenario.fires_at})
    if missing:
        raise ValueError(f"alerts without a firing unit test: {missing}")
    return {"rule_files": [f"../{RULES_FILE}"], "evaluation_interval": "1m",
            "tests": [_case(scenario, rules[scenario.alert], q, runbook_base) for scenario in SCENARIOS]
            + [_alias_case(spec, q) for spec in catalog.ALL if spec.alias]}


def _alias_case(spec: catalog.MetricSpec, q: PromQL) -> dict[str, Any]:
    """The alias carries the metric's latest value and labels."""
    labels = f'instance="{INSTANCE}", job="{JOB}", otel_scope_name="otel_memory"'
    alias = f"{q.prefix}{spec.alias}"
    return {"name": f"{alias} is {q.name(spec)}", "interval": "1m",
            "input_series": [{"series": f"{q.name(spec)}{{{labels}}}", "values": "100 250 400"}],
            "promql_expr_test": [{"expr": alias, "eval_time": "2m",
                                  "exp_samples": [{"labels": f"{alias}{{{labels}}}", "value": 400}]}]}


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=1000, allow_unicode=True)


def write_alert_rules(out_dir: Path, *, prefix: str = "", for_scale: float = 1.0,
                      runbook_base: str = RUNBOOK_URL) -> list[Path]:
    """Write ``<out_dir>/otel-memory.rules.yml`` (and at ``for_scale`` 1.0 its unit tests in
    ``<out_dir>/tests/``); returns the paths written. ``runbook_base`` is where your copy of
    docs/runbook.md is published; every alert's runbook_url points at its section there."""
    out_dir = Path(out_dir)
    rules_text = _dump(rules_document(prefix, for_scale, runbook_base))
    tests_text = _dump(tests_document(prefix, runbook_base)) if for_scale == 1.0 else None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RULES_FILE
    path.write_text(rules_text, encoding="utf-8")
    paths = [path]
    if tests_text is not None:
        (out_dir / "tests").mkdir(exist_ok=True)
        tests_path = out_dir / "tests" / TESTS_FILE
        tests_path.write_text(tests_text, encoding="utf-8")
        paths.append(tests_path)
    return paths
