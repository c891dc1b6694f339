"""The RabbitMQ, NATS and Kafka targets as containers on a real engine, on images built here (no
registry): the kill-and-cut experiment every broker runs locally (tests/integration/
test_brokers.py) holds the same way with --deployer docker, nothing acknowledged is lost, and
the run leaves no container or network behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_brokers import BROKERS, run_on
from tests.integration.test_catalogue import assert_exact_ledger, verdicts
from tests.integration.test_docker import DOCKER, of_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What each broker's container writes once it serves (its output is kept in logs/broker.log).
SERVING = {
    "rabbitmq": "Server startup complete",
    "nats": "Server is ready",
    "kafka": "Kafka Server started",
}


@pytest.mark.parametrize("broker", BROKERS)
def test_kill_and_cut_holds_on_containers_and_leaves_none(
    harness_cli, tmp_path: Path, broker: str
) -> None:
    result, journal = run_on(harness_cli, broker, tmp_path, *DOCKER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (journal["target"], journal["deployer"]) == (broker, "docker")
    assert set(verdicts(journal).values()) == {"held"}, journal["checks"]
    ledger = journal["ledger"]
    assert ledger["acknowledged"] > 1500 and ledger["processed"] >= ledger["acknowledged"]
    assert ledger["lost"] == 0
    assert_exact_ledger(ledger)
    broker_log = (Path(journal["run_dir"]) / "logs" / "broker.log").read_text(errors="replace")
    assert SERVING[broker] in broker_log, broker_log[-2000:]
    assert of_run(journal["run_id"]) == []
