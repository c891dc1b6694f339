"""Grafana dashboards, generated from the same panel catalogue as report.html.

Generated rather than hand-written: a panel added to the catalogue appears on every dashboard
and in every report at once. They are built with Grafana's own typed builders
(grafana-foundation-sdk, generated from Grafana's schema), so a field Grafana does not know
cannot be written. The JSON is kept in ``dashboards/`` for importing by hand;
``harness dashboards build`` writes it again, and a test keeps the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.builders.common import VizLegendOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    VariableOption,
    VariableRefresh,
)

from harness.report.panels import BROKERS, OVERVIEW, VARIABLES, Panel

DATASOURCE_UID = "harness-prometheus"
# Annotations the harness posts carry this tag; the dashboards draw every one of them.
ANNOTATION_TAG = "harness"
# The Grafana whose schema the JSON is written in: the SDK's release line (schemaVersion 41).
GRAFANA_VERSION = "11.6"
_DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
_WIDTH, _HEIGHT = 12, 8


def overview() -> dict[str, Any]:
    lacking = {metric: target for target, b in BROKERS.items() for metric in b.lacks}
    return _dashboard(
        "harness-overview",
        "Harness: async system overview",
        "Backlog, lag, throughput, latency, retries, duplicates, dead letters and load, for any "
        "target; faults from harness runs are drawn as annotations.",
        OVERVIEW,
        lacking,
    )


def broker(target: str) -> dict[str, Any]:
    return _dashboard(
        f"harness-{target}",
        f"Harness: {target}",
        f"The overview, then the {target} broker's own series.",
        OVERVIEW + BROKERS[target].panels,
        dict.fromkeys(BROKERS[target].lacks, target),
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


def _dashboard(
    uid: str,
    title: str,
    description: str,
    panels: Sequence[Panel],
    lacking: Mapping[str, str],
) -> dict[str, Any]:
    """``lacking``: metric → the target that cannot export it, said on the panels that read it."""
    built = (
        board.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([ANNOTATION_TAG])
        .timezone("browser")
        .refresh("5s")
        .time("now-15m", "now")
        .with_variable(
            board.DatasourceVariable("datasource")
            .label("Prometheus")
            .type("prometheus")
            .current(VariableOption(text=DATASOURCE_UID, value=DATASOURCE_UID))
        )
        .annotation(_fault_annotations())
    )
    for name, (series, label) in VARIABLES.items():
        built.with_variable(_query_variable(name, f"label_values({series}, {label})"))
    for number, panel in enumerate(panels, start=1):
        built.with_panel(_panel(number, panel, lacking))
    encoded: dict[str, Any] = json.loads(json.dumps(built.build(), cls=JSONEncoder))
    return encoded


def _query_variable(name: str, query: str) -> board.QueryVariable:
    return (
        board.QueryVariable(name)
        .datasource(_DATASOURCE)
        .query({"query": query, "refId": name})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)  # a new run's target appears at once
        .include_all(True)
        .multi(True)
        .current(VariableOption(text="All", value="$__all"))
    )


def _fault_annotations() -> board.AnnotationQuery:
    return (
        board.AnnotationQuery()
        .name("harness runs")
        .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .icon_color("red")
        .target(
            board.AnnotationTarget().type("tags").tags([ANNOTATION_TAG]).match_any(True).limit(500)
        )
    )


def _panel(number: int, panel: Panel, lacking: Mapping[str, str]) -> timeseries.Panel:
    lacks = sorted(
        {f"{metric} on {target}" for metric, target in lacking.items() if panel.reads(metric)}
    )
    description = panel.why
    if lacks:
        description += f" No data from {', '.join(lacks)}: the broker cannot tell it."
    built = (
        timeseries.Panel()
        .id(number)
        .title(panel.title)
        .description(description)
        .datasource(_DATASOURCE)
        .span(_WIDTH)  # two to a row: the dashboard's builder places each after the last
        .height(_HEIGHT)
        .unit(panel.unit)
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for i, query in enumerate(panel.queries):
        built.with_target(
            prometheus.Dataquery()
            .ref_id(chr(ord("A") + i))
            .expr(query.expr)
            .legend_format(query.legend)
        )
    return built
