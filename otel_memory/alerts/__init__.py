"""Prometheus alert rules and their promtool unit tests, generated from the metric catalogue.

``alerts/otel-memory.rules.yml`` and ``alerts/tests/`` are this package's output; a test fails
when the committed files differ from what it writes.

Example::

    from pathlib import Path
    from otel_memory.alerts import write_alert_rules

    write_alert_rules(Path("alerts"))                  # production durations
    write_alert_rules(Path("/tmp/rules"), for_scale=0.01)
"""

from .rules import ALERT_PREFIX, RUNBOOK_URL, SEVERITIES, AlertRule, alert_rules, duration
from .write import (
    ALIAS_GROUP_NAME,
    RULES_FILE,
    TESTS_FILE,
    alias_rules,
    rules_document,
    tests_document,
    write_alert_rules,
)

__all__ = [
    "ALERT_PREFIX", "ALIAS_GROUP_NAME", "RULES_FILE", "RUNBOOK_URL", "SEVERITIES", "TESTS_FILE", "AlertRule",
    "alert_rules", "alias_rules", "duration", "rules_document", "tests_document", "write_alert_rules",
]
