"""A real run on a host that busy loops saturate: the journal says so, a timing check that failed
then is inconclusive with the reason, one that held keeps its hold, and the ledger is judged as
ever."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ROOT, harness_argv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOG_AFTER_S = 4.0  # into the load, the busy loops start...
HOG_S = 8.0  # ...and run this long: the checks below look from +7s to +10s
# Niced, so that the run's own processes keep the CPU they need (no scrape is missed, which
# would make the checks inconclusive for another reason) while no core is left idle.
HOG = "import os\nos.nice(19)\nwhile True: pass"
WINDOW = "nothing waits while the host is saturated"
MOMENT = "the backlog is counted while the host is saturated"
LEDGER = "nothing acknowledged is lost"
EXPERIMENT = f"""\
name: saturated-host
target: {ROOT / "targets" / "redis-streams.yaml"}
load: {{rate: 50/s, duration: 20s}}
drain: 10s
checks:
  - {{name: {WINDOW}, query: "sum(harness_queue_depth)", from: load.start+7s, to: load.start+10s,
     expect: "< 0"}}
  - {{name: {MOMENT}, query: "sum(harness_queue_depth)", at: load.start+8s, expect: ">= 0"}}
  - {{name: {LEDGER}, ledger: lost, expect: "== 0"}}
"""


def load_start(runs: Path, timeout_s: float) -> float:
    """When the run's load started, read from its events.jsonl as the run writes it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for events in runs.glob("*/events.jsonl"):
            for line in events.read_text().splitlines():
                event = json.loads(line)
                if event["kind"] == "load.start":
                    return float(event["t_complete"])
        time.sleep(0.2)
    raise AssertionError(f"no load.start within {timeout_s:g}s")


def check(journal: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in journal["checks"] if c["name"] == name)


def test_checks_over_a_saturated_host_say_so(
    tmp_path: Path, hogs: list[subprocess.Popen[bytes]]
) -> None:
    experiment, runs = tmp_path / "saturated-host.yaml", tmp_path / "runs"
    experiment.write_text(EXPERIMENT)
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        run = subprocess.Popen(
            harness_argv("run", str(experiment), "--runs-dir", str(runs)),
            cwd=ROOT, stdout=out, stderr=err,
        )  # fmt: skip
    try:
        time.sleep(max(0.0, load_start(runs, 60) + HOG_AFTER_S - time.time()))
        hogged_from = time.time()
        hogs.extend(
            subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(os.cpu_count() or 1)
        )
        time.sleep(HOG_S)
        for hog in hogs:
            hog.kill()
        hogged_to = time.time()
        code = run.wait(timeout=90)
    finally:
        if run.poll() is None:
            run.terminate()  # the harness tears down on SIGTERM
            run.wait(timeout=60)
    stderr = " ".join((tmp_path / "err.txt").read_text().split())  # unwrapped: 80 columns
    [run_dir] = runs.iterdir()
    journal = json.loads((run_dir / "journal.json").read_text())

    saturated = [e for e in journal["timeline"] if e["kind"] == "host.saturated"]
    assert any(e["t_invoke"] < hogged_to and e["t_complete"] > hogged_from for e in saturated), (
        journal["timeline"]
    )
    span = next(e for e in saturated if e["t_complete"] > hogged_from)
    assert span["t_complete"] - span["t_invoke"] >= 3.0
    assert (span["target"], span["outcome"]) == ("host", "fail")
    assert span["value"]["busy"] >= 0.95 and span["value"]["cores"] == psutil.cpu_count()

    window = check(journal, WINDOW)
    assert window["verdict"] == "inconclusive", window
    assert "samples breach" in window["observed"]  # what it measured is kept
    assert window["note"].startswith("the host's CPU was saturated from +")
    assert window["note"].endswith(
        "inside this check's window: the machine, not the system, may be why it failed"
    )
    moment = check(journal, MOMENT)
    assert moment["verdict"] == "held", moment
    assert moment["note"].endswith("at this check's moment")
    ledger = check(journal, LEDGER)
    assert (ledger["verdict"], ledger["note"]) == ("held", None)
    assert (journal["verdict"], code) == ("inconclusive", 2), stderr

    assert "the host's CPU has been saturated for" in stderr  # live, as it happened
    assert "timing checks over that time say so" in stderr  # and again at judging
    [case] = (
        c for c in ET.parse(run_dir / "junit.xml").iter("testcase") if c.get("name") == WINDOW
    )
    error = case.find("error")
    assert error is not None and window["note"] in (error.get("message") or "")
    assert 'class="saturated"' in (run_dir / "report.html").read_text()
