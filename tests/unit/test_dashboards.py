"""The dashboards, the panel catalogue they share with report.html, and the annotations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.journal import Event, Outcome
from harness.report import dashboards, grafana, panels
from tests.conftest import ROOT


def test_the_committed_dashboards_are_the_generated_ones() -> None:
    for name, dashboard in dashboards.all_dashboards().items():
        committed = json.loads((ROOT / "dashboards" / name).read_text())
        assert committed == dashboard, f"dashboards/{name} is stale: run `harness dashboards build`"


def test_every_panel_filters_by_the_target_and_only_uses_known_variables() -> None:
    for panel in [p for target in panels.BROKERS for p in panels.for_target(target)]:
        for query in panel.queries:
            assert '$target"' in query.expr, (panel.title, query.expr)
            variables = set(re.findall(r"\$[a-z_]+", query.expr))
            assert variables <= {"$target", "$queue", "$__rate_interval"}, query.expr


def test_concrete_fills_in_one_run_and_leaves_no_variable() -> None:
    for panel in panels.OVERVIEW:
        for query in panel.queries:
            expr = panels.concrete(query.expr, "redis-streams", "jobs")
            assert "$" not in expr
            assert 'target="redis-streams"' in expr


def test_panels_tile_the_dashboard_without_overlap() -> None:
    for target in panels.BROKERS:
        tiles_without_overlap(dashboards.broker(target)["panels"])


def tiles_without_overlap(placed: list[dict[str, Any]]) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in placed:
        pos = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_build_writes_every_dashboard(tmp_path: Path) -> None:
    written = dashboards.build(tmp_path)
    assert sorted(p.name for p in written) == sorted(
        ["overview.json", *(f"{target}.json" for target in panels.BROKERS)]
    )
    assert set(panels.BROKERS) == {p.stem for p in (ROOT / "targets").glob("*.yaml")}


def test_a_fault_is_annotated_with_run_experiment_target_and_kind() -> None:
    event = Event(
        "fault.apply", "worker->broker", 100.0, 100.5, Outcome.OK,
        {"fault": "latency", "label": "slow-link"},
    )  # fmt: skip
    body = grafana.annotation(event, "r1", "slow-consumer", "redis-streams")
    assert body is not None
    assert body["time"] == 100_500
    assert set(body["tags"]) == {
        "harness", "run:r1", "experiment:slow-consumer", "target:redis-streams", "fault:latency",
    }  # fmt: skip
    assert "latency on worker->broker" in body["text"]


def test_only_faults_and_phases_are_annotated() -> None:
    ready = Event("component.ready", "api", 1.0, 1.0, Outcome.OK)
    assert grafana.annotation(ready, "r1", "e", "t") is None
    failed = Event("fault.heal", "worker-0", 1.0, 2.0, Outcome.FAIL, {"fault": "kill"})
    body = grafana.annotation(failed, "r1", "e", "t")
    assert body is not None and body["text"].endswith("failed")
