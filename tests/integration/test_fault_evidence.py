"""Evidence that each fault took effect, on real runs of the reference target: a fault on a
link that carries traffic and on a worker with work in hand holds with its evidence in the
journal; the same faults where nothing flows (a link the target does not use, a replica that
nothing reaches) make a run that requires their effect inconclusive, saying what was idle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_catalogue import verdicts

pytestmark = [pytest.mark.integration]

EXPERIMENT = """\
name: evidence
description: a latency and a pause, each required to take effect
target: redis-streams
load: {{rate: 100/s, duration: 12s}}
drain: 30s
require_effect: true
timeline:
  - {{name: slow-link, at: 3s, for: 4s, fault: latency, link: {link}, latency: 50}}
  - {{name: hang, at: 5s, for: 2s, fault: pause, component: {component}, count: 1}}
checks:
  - {{name: nothing acknowledged is lost, ledger: lost, expect: "== 0"}}
"""


def run(
    harness_cli, tmp_path: Path, link: str, component: str, *extra: str
) -> tuple[Any, dict[str, Any]]:  # type: ignore[no-untyped-def]
    experiment = tmp_path / "evidence.yaml"
    experiment.write_text(EXPERIMENT.format(link=link, component=component))
    runs = tmp_path / "runs"
    result = harness_cli("run", str(experiment), "--runs-dir", str(runs), *extra, timeout=180)
    journals = list(runs.glob("*/journal.json"))
    assert len(journals) == 1, result.stdout + result.stderr
    return result, json.loads(journals[0].read_text())


def effects(journal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["value"]["label"]: e for e in journal["timeline"] if e["kind"] == "fault.effect"}


def test_faults_on_a_busy_link_and_a_busy_worker_hold_with_their_evidence(
    harness_cli, tmp_path: Path
) -> None:
    result, journal = run(harness_cli, tmp_path, "worker->broker", "worker")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = verdicts(journal)
    assert checks["the fault slow-link took effect"] == "held", journal["checks"]
    assert checks["the fault hang took effect"] == "held"
    found = effects(journal)
    link, hang = found["slow-link"], found["hang"]
    assert link["outcome"] == "ok" and link["value"]["bit"] is True
    assert "crossed the link while it was in effect" in link["value"]["evidence"]
    assert "processings in progress or done in the 5 s before" in hang["value"]["evidence"]
    run_dir = Path(journal["run_dir"])
    assert (run_dir / "traffic.jsonl").is_file()
    assert "Did each fault take effect?" in (run_dir / "report.html").read_text()


def test_faults_where_nothing_flows_make_the_run_inconclusive(harness_cli, tmp_path: Path) -> None:
    """With notifications off, the API never calls the notifier (api->notifier carries nothing)
    and nothing reaches the notifier: a latency and a pause there test nothing."""
    result, journal = run(
        harness_cli, tmp_path, "api->notifier", "notifier", "--set", "api.env.NOTIFY_MODE=off"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert journal["verdict"] == "inconclusive"
    checks = {c["name"]: c for c in journal["checks"]}
    assert checks["nothing acknowledged is lost"]["verdict"] == "held"
    link, hang = checks["the fault slow-link took effect"], checks["the fault hang took effect"]
    assert link["verdict"] == hang["verdict"] == "inconclusive"
    assert link["observed"] == (
        "latency on api->notifier: no traffic crossed the link while it was in effect"
    )
    assert hang["observed"] == (
        "pause on notifier: no traffic crossed api->notifier, relay->notifier in the 5 s before"
    )
    assert {e["outcome"] for e in effects(journal).values()} == {"fail"}
