"""The open model on real runs of the reference target: while the API's link to the broker is
slow (every enqueue takes a second or two), the closed model's users wait for their answers and
send a few percent of what is due; the open model sends every due message on time (the two
run as the experiment's matrix: one folder and one JUnit suite per combination, the worst
verdict as the exit code). With room for only 20 sends in flight, the open model's sends wait
for room: they are counted as delayed, and their latency from when they were due shows the
stall that the latency from when they left does not."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.integration.test_catalogue import verdicts

pytestmark = [pytest.mark.integration]

CORRECTED = "sends waited over 2.5 s from when they were due"
SERVICE = "sends took over 2.5 s from when they left"


def over(metric: str) -> str:
    """How many of a histogram's observations exceed 2.5 s, from its raw samples (the load's
    series go stale once Locust exits)."""
    return (
        f"sum(max_over_time({metric}_count[1m])) - "
        f'sum(max_over_time({metric}_bucket{{le="2.5"}}[1m]))'
    )


STALL = f"""\
name: api-stall
target: {ROOT / "targets" / "redis-streams.yaml"}
load: {{rate: 50/s, duration: 12s}}
drain: 30s
timeline:
  - {{name: stall, at: 3s, for: 5s, fault: latency, link: api->broker, latency: 1000}}
checks:
  - {{name: nothing acknowledged is lost, ledger: lost, expect: "== 0"}}
  - name: {CORRECTED}
    query: '{over("harness_load_request_duration_seconds")}'
    at: end
    expect: "> 10"
  - name: {SERVICE}
    query: '{over("harness_load_request_service_seconds")}'
    at: end
    expect: "< 10"
"""


def sends(journal: dict[str, Any]) -> tuple[int, int]:
    """The sends that left while the stall lasted, and those due then, from the ledger."""
    start, end = journal["moments"]["stall.start"], journal["moments"]["stall.end"]
    lines = (Path(journal["run_dir"]) / "ledger" / "sent.jsonl").read_text().splitlines()
    invokes = [r for r in map(json.loads, lines) if r["type"] == "invoke"]
    left = sum(1 for r in invokes if start <= r["t"] < end)
    due = sum(1 for r in invokes if start <= r["due"] < end)
    return left, due


def test_the_open_model_keeps_sending_while_the_api_stalls(harness_cli, tmp_path: Path) -> None:
    experiment = tmp_path / "api-stall.yaml"
    experiment.write_text(STALL + "matrix:\n  load.model: [closed, open]\n")
    report = tmp_path / "junit.xml"
    result = harness_cli(
        "run", str(experiment), "--runs-dir", str(tmp_path / "runs"), "--junit", str(report),
        timeout=300,
    )  # fmt: skip
    assert "checks by combination" in result.stdout, result.stdout + result.stderr
    header = next(line for line in result.stdout.splitlines() if "load.model=closed" in line)
    assert header.index("load.model=closed") < header.index("load.model=open")
    suites = [s.get("name") for s in ET.parse(report).getroot().iter("testsuite")]
    assert suites == ["api-stall [load.model=closed]", "api-stall [load.model=open]"]
    found = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/journal.json")]
    closed, opened = sorted(found, key=lambda j: j["started_at"])
    assert (closed["overrides"], opened["overrides"]) == (
        ["load.model=closed"],
        ["load.model=open"],
    )
    scheduled = 50 * (opened["moments"]["stall.end"] - opened["moments"]["stall.start"])
    left, _ = sends(closed)
    assert left < 0.3 * scheduled, (left, scheduled)  # each user waits out its answer
    left, due = sends(opened)
    # Each left when it was due (one due at the stall's last instant may leave just after it).
    assert left >= 0.9 * scheduled and abs(left - due) <= 2, (left, due, scheduled)
    # Neither waited: the closed model counts from when a send left, and the open model's
    # sends all left when they were due.
    assert result.returncode == 1, result.stdout + result.stderr
    for journal in (closed, opened):
        expected = {"nothing acknowledged is lost": "held", CORRECTED: "failed", SERVICE: "held"}
        assert verdicts(journal) == expected
        assert "load.delayed" not in [e["kind"] for e in journal["timeline"]]
    [start] = [e for e in opened["timeline"] if e["kind"] == "load.start"]
    assert start["value"]["model"] == "open"


def test_sends_that_wait_for_room_in_flight_are_counted_from_when_they_were_due(
    harness_cli, tmp_path: Path
) -> None:
    experiment = tmp_path / "api-stall.yaml"
    experiment.write_text(STALL)
    runs = tmp_path / "runs"
    result = harness_cli(
        "run", str(experiment), "--set", "load.model=open", "--set", "load.max_in_flight=20",
        "--runs-dir", str(runs), timeout=200,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [path] = runs.glob("*/journal.json")
    journal = json.loads(path.read_text())
    assert verdicts(journal) == {
        "nothing acknowledged is lost": "held",
        CORRECTED: "held",
        SERVICE: "held",
    }
    [delayed] = [e for e in journal["timeline"] if e["kind"] == "load.delayed"]
    assert delayed["value"]["sends"] > 0 and delayed["value"]["max_in_flight"] == 20
    assert "sends waited for one of the 20 allowed in flight" in result.stderr
    left, due = sends(journal)
    assert left < due  # fewer left than were due: the rest waited, and their latency says so
