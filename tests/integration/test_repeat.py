"""`harness run --repeat K` on real runs: two seeds that kill different workers disagree."""

from __future__ import annotations

import itertools
import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.loader import load_experiment
from harness.timeline import expand
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UP = "worker-0 answers while one worker is down"
# One of the two workers is killed from 2 s into the load until 9 s; 4 s into the fault the
# check reads worker-0 alone, so it holds exactly when the seed picked worker-1.
ONE_WORKER_KILLED = f"""\
name: one-worker-killed
target: {ROOT / "targets" / "redis-streams.yaml"}
load: {{rate: 50/s, duration: 10s}}
drain: 20s
timeline:
  - {{name: crash, at: 2s, for: 7s, fault: kill, component: worker, count: 1}}
checks:
  - {{name: {UP}, query: 'sum(up{{instance_name="worker-0"}})', at: crash.start+4s, expect: "== 1"}}
  - {{name: nothing acknowledged is lost, ledger: lost, expect: "== 0"}}
"""


def killed(experiment: Path, seed: int) -> tuple[str, ...]:
    """The replicas the run with this seed kills, from the harness's own planning."""
    [step] = expand(load_experiment(experiment), random.Random(seed))
    return step.target.replicas


def test_two_seeds_that_kill_different_workers_are_flaky(harness_cli, tmp_path: Path) -> None:
    experiment = tmp_path / "one-worker-killed.yaml"
    experiment.write_text(ONE_WORKER_KILLED)
    seed = next(s for s in itertools.count() if killed(experiment, s) != killed(experiment, s + 1))
    report = tmp_path / "junit.xml"
    result = harness_cli(
        "run", str(experiment), "--runs-dir", str(tmp_path / "runs"), "--repeat", "2",
        "--seed", str(seed), "--json", "--junit", str(report),
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert (document["verdict"], document["exit_code"]) == ("flaky", 4)
    assert [run["seed"] for run in document["runs"]] == [seed, seed + 1]
    [repeat] = document["repeats"]
    assert (repeat["experiment"], repeat["target"]) == ("one-worker-killed", "redis-streams")
    assert (repeat["verdict"], repeat["runs"], repeat["held"]) == ("flaky", 2, 1)
    assert repeat["seeds"] == [seed, seed + 1]
    assert repeat["run_dirs"] == [run["run_dir"] for run in document["runs"]]
    checks = {c["name"]: c for c in repeat["checks"]}
    up = checks[UP]
    assert (up["verdict"], up["held"], up["failed"], up["inconclusive"]) == ("flaky", 1, 1, 0)
    # The run whose seed spared worker-0 held, the other saw it down.
    spared = [killed(experiment, s) == ("worker-1",) for s in (seed, seed + 1)]
    assert up["observed"] == [("1" if s else "0") for s in spared], up
    assert [run["verdict"] for run in document["runs"]] == [
        ("held" if s else "failed") for s in spared
    ]
    lost = checks["nothing acknowledged is lost"]
    assert (lost["verdict"], lost["held"]) == ("held", 2), lost
    suites = [s.get("name") for s in ET.parse(report).getroot()]
    assert suites == [
        "one-worker-killed (run 1 of 2)",
        "one-worker-killed (run 2 of 2)",
        "one-worker-killed (2 runs)",
    ]
