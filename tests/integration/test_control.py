"""A control run, on real runs of the reference target (a matrix is run by
``test_open_load.py``, over the two models of arrivals).

``--control`` runs the experiment without its faults first (same seed, same load), then with
them: the backlog that grows only while every worker hangs fails in the control and holds with
the faults, and the check that held alike in both is flagged as one the faults did not move."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.integration.test_catalogue import verdicts

pytestmark = [pytest.mark.integration]

GROWS = "the backlog grows while every worker hangs"
LOST = "nothing acknowledged is lost"
# Every worker hangs for 5 s of a 100/s load: the backlog the scrapes see peaks at 330-430 (500
# messages are due); without the hang it stays under 30, also beside a busy core
# (docs/benchmarks.md, "A control run beside a busy core").
HUNG_WORKERS = f"""\
name: hung-workers
target: {ROOT / "targets" / "redis-streams.yaml"}
load: {{rate: 100/s, duration: 12s}}
drain: 30s
require_effect: true
timeline:
  - {{name: hang, at: 3s, for: 5s, fault: pause, component: worker}}
checks:
  - name: {GROWS}
    sometimes: >-
      sum(harness_queue_depth{{queue="$queue"}}) + sum(harness_queue_inflight{{queue="$queue"}})
      > 150
    during: hang
  - {{name: {LOST}, ledger: lost, expect: "== 0"}}
"""


def journals(runs: Path) -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in sorted(runs.glob("*/journal.json"))]
    return sorted(found, key=lambda j: j["started_at"])


def test_a_control_run_shows_what_the_faults_moved(harness_cli, tmp_path: Path) -> None:
    experiment = tmp_path / "hung-workers.yaml"
    experiment.write_text(HUNG_WORKERS)
    runs = tmp_path / "runs"
    result = harness_cli(
        "run", str(experiment), "--control", "--runs-dir", str(runs), "--seed", "7", timeout=360
    )
    control, faulted = journals(runs)
    assert result.returncode == 0, result.stdout + result.stderr  # the faulted run's verdict
    assert control["faults_skipped"] is True and faulted["faults_skipped"] is False
    assert control["seed"] == faulted["seed"] == 7
    # The control kept the fault's moments (its window) and applied nothing.
    kinds = [e["kind"] for e in control["timeline"]]
    assert kinds.count("fault.skipped") == 2 and "fault.apply" not in kinds
    assert "fault.effect" not in kinds
    assert control["moments"]["hang.end"] - control["moments"]["hang.start"] == pytest.approx(
        5, abs=1
    )
    # A busy host makes the control's failed window check inconclusive, never held.
    without = verdicts(control)
    assert without[LOST] == "held" and without[GROWS] in ("failed", "inconclusive"), without
    assert verdicts(faulted) == {GROWS: "held", LOST: "held", "the fault hang took effect": "held"}
    link = faulted["control"]
    assert (link["run_dir"], link["verdict"]) == (control["run_dir"], control["verdict"])
    assert link["unmoved"] == [LOST]
    assert "without faults" in result.stdout and "no: held alike" in result.stdout
    assert f"control run (faults skipped): {control['verdict']}" in result.stdout
    page = (Path(faulted["run_dir"]) / "report.html").read_text()
    assert "Control run (faults skipped)" in page and "held alike without the faults" in page
    assert "A control run" in (Path(control["run_dir"]) / "report.html").read_text()
