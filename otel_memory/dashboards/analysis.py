"""Reading PromQL back: which metric names an expression uses and what encloses them.

The dashboard and alert tests (and the end-to-end test against Prometheus) use these to
check every expression: names come from the catalogue, counters appear only inside
``rate``/``increase``, ranges use ``$__rate_interval``.

Example::

    metric_names('sum by (instance) (rate(memory_pool_borrows_total{job=~"$job"}[5m]))')
    # {'memory_pool_borrows_total'}
"""

from __future__ import annotations

import re

KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*(?:(?:by|without)\s*)?\()?")
_NAME_AT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _mask(expr: str) -> str:
    """``expr`` with strings, label matchers, ranges and grouping lists blanked out (same length)."""
    def blank(match: re.Match[str]) -> str:
        return " " * len(match.group(0))

    masked = _STRING.sub(blank, expr)
    masked = _BRACES.sub(blank, masked)
    masked = _RANGE.sub(blank, masked)
    return _GROUPING.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), masked)


def metric_occurrences(expr: str) -> list[tuple[int, str]]:
    """(position, name) of every metric name in ``expr``, in order."""
    found = []
    for match in _IDENT.finditer(_mask(expr)):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        found.append((match.start(1), name))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects."""
    return {name for _, name in metric_occurrences(expr)}


def enclosing_function(expr: str, position: int) -> str | None:
    """The function whose parentheses enclose ``position`` most closely, or None.

    Aggregations count as functions: in ``sum by (x) (rate(a[1m]))`` the name ``a`` is
    enclosed by ``rate``.
    """
    masked = _mask(expr)
    depth = 0
    for index in range(position - 1, -1, -1):
        char = masked[index]
        if char == ")":
            depth += 1
        elif char == "(":
            if depth:
                depth -= 1
                continue
            head = masked[:index].rstrip()
            # an aggregation written as `sum by (labels) (...)`: the grouping list was blanked
            head = re.sub(r"\b(by|without)\s*$", "", head).rstrip()
            match = re.search(r"([a-zA-Z_][a-zA-Z0-9_]*)$", head)
            return match.group(1) if match else None
    return None


def ranges(expr: str) -> list[str]:
    """The range durations (``[...]`` contents) of ``expr``, subqueries included."""
    return [match.group(0)[1:-1] for match in _RANGE.finditer(_STRING.sub('""', expr))]


def selector_at(expr: str, position: int) -> str:
    """The label matchers (inside ``{...}``) following the metric name at ``position``, or ''."""
    name = _NAME_AT.match(expr, position)
    end = name.end() if name else position
    if end < len(expr) and expr[end] == "{":
        close = expr.index("}", end)
        return expr[end + 1:close]
    return ""
