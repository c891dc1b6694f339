"""The dashboards, the panel catalogue they share with report.html, and the annotations."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.journal import Event, Outcome
from harness.report import dashboard_schema, dashboards, grafana, panels
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


def test_every_shipped_dashboard_is_what_grafanas_schema_allows() -> None:
    shipped = sorted((ROOT / "dashboards").glob("*.json"))
    assert len(shipped) == len(dashboards.all_dashboards())
    for path in shipped:
        assert dashboard_schema.check_file(path) == [], path


def _panel(board: dict[str, Any], n: int = 0) -> dict[str, Any]:
    panel: dict[str, Any] = board["panels"][n]
    return panel


def _misspell_unit(board: dict[str, Any]) -> None:
    defaults = _panel(board)["fieldConfig"]["defaults"]
    defaults["unti"] = defaults.pop("unit")


@pytest.mark.parametrize(
    ("spoil", "where", "said"),
    [
        (_misspell_unit, "panels[0].fieldConfig.defaults.unti", "unknown field of FieldConfig"),
        (lambda b: b.update(refersh="5s"), "refersh", "unknown field of Dashboard"),
        (
            lambda b: _panel(b, 1)["gridPos"].update(w="12"),
            "panels[1].gridPos.w",
            "expected an integer, got text",
        ),
        (
            lambda b: _panel(b)["options"]["legend"].update(displayMode="lists"),
            "panels[0].options.legend.displayMode",
            "'lists' is not one of",
        ),
        (
            lambda b: _panel(b)["fieldConfig"]["defaults"].update(custom={"lineWidht": 1}),
            "panels[0].fieldConfig.defaults.custom.lineWidht",
            "unknown field of GraphFieldConfig",
        ),
        (
            lambda b: _panel(b, 2)["targets"][0].update(exrp="up"),
            "panels[2].targets[0].exrp",
            "unknown field of Dataquery",
        ),
        (lambda b: b.pop("schemaVersion"), "schemaVersion", "missing"),
        (
            lambda b: b["annotations"]["list"][0]["target"].update(tags="harness"),
            "annotations.list[0].target.tags",
            "expected a list",
        ),
        (lambda b: _panel(b).update(type="timeseries2"), "panels[0].type", "not a panel type"),
        (lambda b: _panel(b, 3).pop("datasource"), "panels[3].datasource", "data source"),
        (
            lambda b: _panel(b)["targets"][0].update(expr='up{tenant="$tenant"}'),
            "panels[0].targets[0].expr",
            "uses $tenant, which the dashboard's templating does not define",
        ),
    ],
)
def test_a_spoilt_dashboard_is_refused_with_its_line_and_field(
    tmp_path: Path, spoil: Callable[[dict[str, Any]], None], where: str, said: str
) -> None:
    board = copy.deepcopy(dashboards.overview())
    spoil(board)
    path = tmp_path / "board.json"
    path.write_text(json.dumps(board, indent=2))
    (problem,) = dashboard_schema.check_file(path)
    assert problem.field == where and said in problem.message, str(problem)
    assert problem.exit_code == 3
    # The line is the field's own; for a field left out, its parent's.
    assert problem.line is not None
    key = where.rsplit(".", 1)[-1].split("[")[0]
    left_out = problem.message.startswith("missing") or "must name" in problem.message
    line = path.read_text().splitlines()[problem.line - 1]
    assert left_out or f'"{key}"' in line, (problem.line, line)


def test_every_dashboard_panel_is_one_the_run_draws_from_its_own_prometheus() -> None:
    """The report's charts are checked for data on every reference target (tests/integration:
    test_brokers and test_run); a dashboard panel outside the catalogue would escape that."""
    for target in panels.BROKERS:
        board = dashboards.broker(target)
        drawn = [
            (p.title, [q.expr for q in p.queries], [q.legend for q in p.queries])
            for p in panels.for_target(target)
        ]
        shown = [
            (
                p["title"],
                [t["expr"] for t in p["targets"]],
                [t["legendFormat"] for t in p["targets"]],
            )
            for p in board["panels"]
        ]
        assert shown == drawn, target
    overview = [p["title"] for p in dashboards.overview()["panels"]]
    assert overview == [p.title for p in panels.OVERVIEW]


def test_a_panel_a_target_cannot_fill_says_so_and_matches_the_targets_lacks() -> None:
    for target, broker in panels.BROKERS.items():
        spec = yaml.safe_load((ROOT / "targets" / f"{target}.yaml").read_text())
        assert set(broker.lacks) == set(spec.get("lacks", {})), target
    oldest = next(p for p in dashboards.broker("rabbitmq")["panels"] if "Oldest" in p["title"])
    assert "No data from harness_oldest_message_age_seconds on rabbitmq" in oldest["description"]
    same = next(p for p in dashboards.broker("kafka")["panels"] if "Oldest" in p["title"])
    assert "No data" not in same["description"]


def test_every_posted_annotation_is_drawn_by_every_dashboard() -> None:
    """Grafana draws an annotation on a dashboard whose annotation query's tags match it."""
    for kind in grafana.ANNOTATED:
        event = Event(kind, "worker-0", 1.0, 2.0, Outcome.OK, {"fault": "kill"})
        body = grafana.annotation(event, "r1", "e", "t")
        assert body is not None and isinstance(body["time"], int) and body["text"]
        for board in dashboards.all_dashboards().values():
            (query,) = board["annotations"]["list"]
            wanted = query["target"]
            assert query["datasource"]["uid"] == "-- Grafana --" and wanted["type"] == "tags"
            matches = any if wanted["matchAny"] else all
            assert matches(tag in body["tags"] for tag in wanted["tags"]), (kind, board["uid"])


def test_the_grafana_page_describes_every_panel_and_provisions_what_push_creates() -> None:
    page = (ROOT / "docs" / "grafana.md").read_text()
    for board in dashboards.all_dashboards().values():
        for panel in board["panels"]:
            title = panel["title"]  # a broker's own panel, without its broker's name
            assert f"**{title}**" in page or f"**{title.split(': ', 1)[-1]}**" in page, title
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)]
    (source,) = next(b["datasources"] for b in blocks if "datasources" in b)
    assert source == grafana.datasource(source["url"])
    (provider,) = next(b["providers"] for b in blocks if "providers" in b)
    assert provider["type"] == "file" and provider["options"]["path"] in page.split("```")[-1]
    assert dashboards.DATASOURCE_UID in page and dashboards.GRAFANA_VERSION in page
