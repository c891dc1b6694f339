"""Grafana dashboards, generated from the same panel catalogue as report.html.

Generated rather than hand-written: a panel added to the catalogue appears on every dashboard
and in every report at once. The JSON is kept in ``dashboards/`` for importing by hand;
``harness dashboards build`` writes it again, and a test keeps the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.report.panels import BROKERS, OVERVIEW, Panel

DATASOURCE_UID = "harness-prometheus"
# Where `harness run`, `up` and `dashboards push` look for a Grafana when no --grafana-url.
GRAFANA_URL_ENV = "HARNESS_GRAFANA_URL"
# Annotations the harness posts carry this tag; the dashboards draw every one of them.
ANNOTATION_TAG = "harness"
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_WIDTH, _HEIGHT = 12, 8


def overview() -> dict[str, Any]:
    return _dashboard(
        "harness-overview",
        "Harness: async system overview",
        "Backlog, lag, throughput, latency, retries, duplicates, dead letters and load, for any "
        "target; faults from harness runs are drawn as annotations.",
        OVERVIEW,
    )


def broker(target: str) -> dict[str, Any]:
    return _dashboard(
        f"harness-{target}",
        f"Harness: {target}",
        f"The overview, then the {target} broker's own series.",
        OVERVIEW + BROKERS[target],
    )


def all_dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard, for every dashboard the harness ships."""
    return {"overview.json": overview()} | {f"{t}.json": broker(t) for t in BROKERS}


def build(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, dashboard in all_dashboards().items():
        path = folder / name
        path.write_text(json.dumps(dashboard, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _dashboard(uid: str, title: str, description: str, panels: Sequence[Panel]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [ANNOTATION_TAG],
        "timezone": "browser",
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "schemaVersion": 39,
        "templating": {"list": _variables()},
        "annotations": {"list": [_fault_annotations()]},
        "panels": [_panel(i, panel) for i, panel in enumerate(panels)],
    }


def _variables() -> list[dict[str, Any]]:
    datasource = {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {"text": DATASOURCE_UID, "value": DATASOURCE_UID},
    }
    return [
        datasource,
        _query_variable("target", "label_values(harness_load_target_rate, target)"),
        _query_variable("queue", 'label_values(harness_queue_depth{target=~"$target"}, queue)'),
    ]


def _query_variable(name: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "query",
        "datasource": _DATASOURCE,
        "query": {"query": query, "refId": name},
        "refresh": 2,  # on time range change: a new run's target appears without a reload
        "includeAll": True,
        "multi": True,
        "current": {"text": "All", "value": "$__all"},
    }


def _fault_annotations() -> dict[str, Any]:
    return {
        "name": "harness runs",
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "iconColor": "red",
        "target": {"type": "tags", "tags": [ANNOTATION_TAG], "matchAny": True, "limit": 500},
    }


def _panel(index: int, panel: Panel) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.why,
        "datasource": _DATASOURCE,
        "gridPos": {
            "x": (index % 2) * _WIDTH,
            "y": (index // 2) * _HEIGHT,
            "w": _WIDTH,
            "h": _HEIGHT,
        },
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": q.expr, "legendFormat": q.legend}
            for i, q in enumerate(panel.queries)
        ],
    }
