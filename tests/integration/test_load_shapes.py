"""Each shape of load on a real run of the reference target: the sends the ledger records in
each phase are what the shape makes due there, a check reads a phase as a span, and the rate
the load aimed for is drawn in report.html as "offered"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.report import charts
from tests.conftest import ROOT
from tests.integration.test_catalogue import verdicts

pytestmark = [pytest.mark.integration]

SHAPES = {
    "ramp": ("{ramp: {from: 0, to: 80/s, over: 6s}}", "load.ramp", 0.5 * 6 * 80),
    "steps": ("{steps: [{rate: 20/s, for: 3s}, {rate: 80/s, for: 3s}, {rate: 20/s, for: 3s}]}",
              "load.step2", 3 * 80),
    "spike": ("{spike: {base: 20/s, peak: 100/s, at: 3s, for: 3s}}", "load.peak", 3 * 100),
    "sine": ("{sine: {mean: 50/s, amplitude: 30/s, period: 9s}}", "load", 9 * 50),
}  # fmt: skip
EXPERIMENT = """\
name: {name}
target: {target}
load: {{duration: 9s, shape: {shape}}}
drain: 20s
checks:
  - {{name: nothing acknowledged is lost, ledger: lost, expect: "== 0"}}
  - {{name: the phase was sent, query: 'sum(harness_load_target_rate)', during: {span},
     expect: ">= 0"}}
"""


def sent_between(run_dir: Path, start: float, end: float) -> int:
    lines = (run_dir / "ledger" / "sent.jsonl").read_text().splitlines()
    return sum(
        1 for r in map(json.loads, lines) if r["type"] == "invoke" and start <= r["due"] < end
    )


def offered(run_dir: Path) -> list[float]:
    [chart] = [c for c in charts.load(run_dir) if c.title == "Load: requests by outcome"]
    [line] = [line for line in chart.lines if line.legend == "offered"]
    return [v for _, v in line.points]


def test_every_shape_sends_what_it_makes_due_and_is_drawn(harness_cli, tmp_path: Path) -> None:
    folder = tmp_path / "shapes"
    folder.mkdir()
    for name, (shape, span, _) in SHAPES.items():
        text = EXPERIMENT.format(name=name, target=ROOT / "targets" / "redis-streams.yaml",
                                 shape=shape, span=span)  # fmt: skip
        (folder / f"{name}.yaml").write_text(text)
    runs = tmp_path / "runs"
    result = harness_cli("run", str(folder), "--runs-dir", str(runs), "--json", timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    journals: dict[str, Any] = {}
    for run in json.loads(result.stdout)["runs"]:
        journals[run["experiment"]] = json.loads(Path(run["run_dir"], "journal.json").read_text())
    assert sorted(journals) == sorted(SHAPES)
    for name, (_, span, due) in SHAPES.items():
        journal, run_dir = journals[name], Path(journals[name]["run_dir"])
        assert set(verdicts(journal).values()) == {"held"}, (name, journal["checks"])
        moments = journal["moments"]
        # A sine has no phases: all of its sends, a whole period's.
        edges = (
            (0, float("inf"))
            if span == "load"
            else (moments[f"{span}.start"], moments[f"{span}.end"])
        )
        sent = sent_between(run_dir, *edges)
        assert abs(sent - due) <= 0.05 * due + 2, (name, sent, due)
        [start] = [e for e in journal["timeline"] if e["kind"] == "load.start"]
        assert start["value"]["model"] == "open" and name in start["value"]["shape"]
        drawn = offered(run_dir)
        assert drawn and max(drawn) <= start["value"]["rate"] + 1e-6, (name, drawn)
        assert "offered" in (run_dir / "report.html").read_text()
    # The spike is drawn: its peak and its base both among the offered rates.
    assert {20.0, 100.0} <= set(offered(Path(journals["spike"]["run_dir"])))
