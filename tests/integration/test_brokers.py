"""Every broker target, deployed for real, under a worker kill and a partition, against its ledger.

One short experiment (below) runs on each broker: the workers are cut off the broker, so that a
backlog builds, and once they are back (a Kafka consumer takes over a second to find its group
again) one of them is killed while it holds a share of that backlog. Batches of 50 (where the
worker reads in batches) leave a killed Kafka worker little chance of having just committed
everything it read: on Kafka only what it read and did not commit is read again. As shipped
(acknowledgement after processing) nothing acknowledged is lost and the killed worker's messages
are delivered again; with acknowledgement before processing the killed worker takes what it
held with it, and the harness reports the lost ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.report import charts, panels
from tests.conftest import ROOT
from tests.integration.test_catalogue import assert_exact_ledger, verdicts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BROKERS = ["rabbitmq", "nats", "kafka"]

KILL_AND_CUT = """\
name: kill-and-cut
description: the workers lose the broker for 4 s, then one of them is killed holding a backlog
target: redis-streams
overrides:
  worker: {env: {PROCESS_MS: 10, BATCH: 50}}
load: {rate: 100/s, duration: 20s}
drain: 30s
timeline:
  - {name: cut, at: 4s, for: 4s, fault: partition, link: worker->broker}
  - {name: crash, at: 10.5s, for: 4s, fault: kill, component: worker, count: 1}
checks:
  - name: the killed worker's messages are delivered again
    query: 'sum(harness_messages_retried_total{queue="jobs"})'
    at: end
    expect: "> 0"
  - name: the backlog is gone within 20 s of the crash
    recovers: >-
      sum(harness_queue_depth{queue="jobs"}) + sum(harness_queue_inflight{queue="jobs"}) < 20
    after: crash.end
    within: 20s
  - {name: nothing acknowledged is lost, ledger: lost, expect: "== 0"}
  - {name: no effect is applied twice, ledger: duplicated, expect: "== 0"}
"""


def run_on(harness_cli, broker: str, tmp_path: Path, *extra: str) -> tuple[Any, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The kill-and-cut experiment on this broker; the harness's output is shown if the run
    leaves no journal."""
    experiment = tmp_path / "kill-and-cut.yaml"
    experiment.write_text(KILL_AND_CUT)
    runs = tmp_path / "runs"
    result = harness_cli(
        "run", str(experiment), "--target", broker, "--runs-dir", str(runs), *extra,
        timeout=240,
    )  # fmt: skip
    journals = list(runs.glob("*/journal.json"))
    assert len(journals) == 1, result.stdout + result.stderr
    return result, json.loads(journals[0].read_text())


@pytest.mark.parametrize("broker", BROKERS)
def test_nothing_acknowledged_is_lost_through_a_kill_and_a_partition(
    harness_cli, tmp_path: Path, broker: str
) -> None:
    result, journal = run_on(harness_cli, broker, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal["target"] == broker
    assert set(verdicts(journal).values()) == {"held"}, journal["checks"]
    ledger = journal["ledger"]
    assert ledger["acknowledged"] > 1500 and ledger["processed"] >= ledger["acknowledged"]
    assert_exact_ledger(ledger)
    every_chart_drew_but_what_the_broker_lacks(broker, Path(journal["run_dir"]))


def every_chart_drew_but_what_the_broker_lacks(broker: str, run_dir: Path) -> None:
    """The report's charts (the dashboards' panels) are the broker's, and each drew the run from
    its real Prometheus, but for those that read a metric the broker cannot export."""
    lacks = yaml.safe_load((ROOT / "targets" / f"{broker}.yaml").read_text()).get("lacks", {})
    saved = json.loads((run_dir / "series.json").read_text())
    expected = panels.for_target(broker)
    *drawn, unseen = saved
    assert [chart["title"] for chart in drawn] == [p.title for p in expected]
    assert unseen["title"] == charts.UNSEEN and len(unseen["lines"][0]["points"]) > 20
    for chart, panel in zip(drawn, expected, strict=True):
        lacked = any(metric in q.expr for q in panel.queries for metric in lacks)
        drew = bool(chart["lines"]) and all(len(line["points"]) > 20 for line in chart["lines"])
        assert drew != lacked, chart


@pytest.mark.parametrize("broker", BROKERS)
def test_acknowledging_before_processing_loses_what_the_killed_worker_held(
    harness_cli, tmp_path: Path, broker: str
) -> None:
    result, journal = run_on(harness_cli, broker, tmp_path, "--set", "worker.env.ACK_MODE=before")
    assert result.returncode == 1, result.stdout + result.stderr
    assert verdicts(journal)["nothing acknowledged is lost"] == "failed", journal["checks"]
    ledger = journal["ledger"]
    assert ledger["lost"] > 0 and ledger["examples"]["lost"]
    assert_exact_ledger(ledger)
