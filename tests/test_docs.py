"""docs/metrics.md is generated from the catalogue and must not go stale."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from otel_memory import catalog
from otel_memory.docs import render_metrics_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
REGENERATE = "stale: run `.venv/bin/otel-memory docs --out docs/metrics.md`"


def test_metrics_reference_is_up_to_date() -> None:
    assert DOCS.read_text() == render_metrics_markdown(), REGENERATE


def test_the_comparison_notices_a_changed_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = tuple(
        dataclasses.replace(spec, description="Something else.")
        if spec is catalog.MEMORY_PEAK else spec for spec in catalog.ALL)
    monkeypatch.setattr(catalog, "ALL", changed)
    assert DOCS.read_text() != render_metrics_markdown()


def test_every_metric_is_documented_with_its_prometheus_name() -> None:
    text = DOCS.read_text()
    for spec in catalog.ALL:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{spec.name}` |")), None)
        assert row is not None, f"{spec.name} is missing from docs/metrics.md"
        assert f"`{spec.prometheus_name}`" in row and f"`{spec.unit}`" in row
        assert spec.instrument.value in row
