"""`harness capacity` on the real reference target, made slow on purpose (one worker, one
message at a time, 40 ms of work each: at most 25 messages/s), so that the rates tried fall on
both sides of what it sustains: 5/s and 10/s are sustained, 60/s is not (the backlog grows past
a second of messages). The catch-up run pauses the worker while 200 messages wait, and measures
how fast it drains them. Then an experiment whose rate is 50% of that capacity runs at half the
stored figure, and says so in its journal; on a system not measured yet (two workers), `harness
run` measures it first.

Beside a busy core (docs/benchmarks.md): at 10/s the backlog stays at 2 to 3 against the bound
of 10; at 60/s it passes 100 within 3 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.test_catalogue import verdicts

pytestmark = [pytest.mark.integration]

SLOW = ("--set", "worker.replicas=1", "--set", "worker.env.PROCESS_MS=40", "--set",
        "worker.env.BATCH=1")  # fmt: skip
SHARE = f"""\
name: half-capacity
target: {ROOT / "targets" / "redis-streams.yaml"}
load: {{rate: 50% capacity, duration: 6s}}
drain: 30s
checks:
  - {{name: nothing acknowledged is lost, ledger: lost, expect: "== 0"}}
"""


def test_capacity_is_measured_stored_and_read_as_a_share(harness_cli, tmp_path: Path) -> None:
    store = {"HARNESS_CAPACITY_DIR": str(tmp_path / "capacity")}
    runs = tmp_path / "runs"
    result = harness_cli(
        "capacity", "redis-streams", *SLOW, "--sweeps", "1", "--rates", "5,10,60",
        "--step", "10s", "--backlog", "200", "--runs-dir", str(runs), "--json",
        timeout=400, env=store,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    measured = json.loads(result.stdout)
    assert measured["rates_per_s"] == [10.0] and measured["rate_per_s"] == 10.0
    # One worker doing 40 ms a message drains at most 25 a second, and does drain.
    assert 5 < measured["catch_up_per_s"] <= 26, measured
    assert measured["backlog"] == 200 and measured["overrides"] == list(SLOW[1::2])
    stored = Path(measured["file"])
    assert stored.parent == tmp_path / "capacity" and json.loads(stored.read_text()) == {
        k: v for k, v in measured.items() if k != "file"
    }

    # Each step is a run of its own: the rate not sustained failed on the backlog alone.
    journals = {}
    for run_dir in measured["runs"]:
        journal = json.loads((Path(run_dir) / "journal.json").read_text())
        journals[journal["experiment"]] = journal
    assert set(journals) == {"capacity-5", "capacity-10", "capacity-60", "catch-up-200"}
    for rate in (5, 10):
        assert journals[f"capacity-{rate}"]["verdict"] == "held"
    assert verdicts(journals["capacity-60"]) == {
        "acknowledged": "held",
        "backlog under a second of messages": "failed",
        "nothing lost": "held",
    }
    catch_up = journals["catch-up-200"]
    assert catch_up["ledger"]["acknowledged"] >= 190 and catch_up["ledger"]["lost"] == 0
    assert [e["value"]["fault"] for e in catch_up["timeline"] if e["kind"] == "fault.apply"] == [
        "pause"
    ]

    # An experiment at 50% of that capacity reads the stored figure.
    experiment = tmp_path / "half.yaml"
    experiment.write_text(SHARE)
    valid = harness_cli("validate", str(experiment), *SLOW, env=store)
    assert "load.rate 50% of capacity: 5/s" in valid.stdout, valid.stdout + valid.stderr
    ran = harness_cli(
        "run", str(experiment), *SLOW, "--runs-dir", str(tmp_path / "half"), env=store
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "50% of the capacity measured" in ran.stderr
    [path] = (tmp_path / "half").glob("*/journal.json")
    load = json.loads(path.read_text())["load"]
    assert load["rate"] == 5.0
    assert load["capacity"]["percent"] == 50.0 and load["capacity"]["capacity_per_s"] == 10.0

    # Another system (two workers) is not the one measured: validation says it is not.
    other = harness_cli("validate", str(experiment), *SLOW[2:], env=store)
    assert "a capacity not measured on this machine yet" in other.stdout, other.stdout

    # Run, it is measured first: one quick sweep doubling from 50/s, its runs kept beside the
    # measurement, not among the experiment's.
    runs = tmp_path / "two-workers"
    ran = harness_cli("run", str(experiment), *SLOW[2:], "--runs-dir", str(runs), env=store,
                      timeout=400)  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "not measured on this machine yet; measuring it first" in ran.stderr
    [path] = runs.glob("*/journal.json")
    load = json.loads(path.read_text())["load"]
    quick = next(
        json.loads(p.read_text())
        for p in (tmp_path / "capacity").glob("*.json")
        if json.loads(p.read_text())["overrides"] == list(SLOW[3::2])
    )
    assert quick["catch_up_per_s"] is None and len(quick["rates_per_s"]) == 1
    assert load["capacity"]["capacity_per_s"] == quick["rate_per_s"] > 0
    assert load["rate"] == quick["rate_per_s"] / 2
    assert all(Path(r).parent == tmp_path / "capacity" / "runs" for r in quick["runs"])
