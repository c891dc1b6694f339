"""Systems the harness did not write, described only in YAML, through the catalogue: the Celery
example in both acknowledgement modes, the Kafka stream processor, and the tutorial's shop
before and after its fix, each on real processes with the ledger read from where the workers
record their effects."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.integration.test_catalogue import assert_exact_ledger, verdicts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Tasks long enough, and the workers busy enough, that a kill lands mid-task nearly always.
CELERY = ("--target", "examples/celery-tasks", "--set", "load.rate=150/s",
          "--set", "worker.env.PROCESS_MS=20")  # fmt: skip


def journal_of(runs: Path) -> dict[str, Any]:
    (run_dir,) = runs.iterdir()
    journal: dict[str, Any] = json.loads((run_dir / "journal.json").read_text())
    return journal


def test_celery_acknowledging_on_start_loses_the_tasks_killed_workers_were_running(
    harness_cli, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    result = harness_cli(
        "run", "experiments/crashed-workers.yaml", *CELERY, "--runs-dir", str(runs), timeout=240
    )
    journal = journal_of(runs)
    assert result.returncode == 1, result.stdout + result.stderr
    checks = verdicts(journal)
    assert checks["nothing acknowledged is lost"] == "failed", journal["checks"]
    assert checks["the dead workers' pending messages are claimed by the survivors"] == (
        "not-applicable"
    )
    assert journal["ledger"]["lost"] > 0 and journal["ledger"]["examples"]["lost"]
    assert_exact_ledger(journal["ledger"])
    assert any(e["kind"] == "ledger.read" and e["outcome"] == "ok" for e in journal["timeline"])


def test_celery_acknowledging_late_loses_at_most_what_a_kill_caught_in_receipt(
    harness_cli, tmp_path: Path
) -> None:
    """Late acknowledgement redelivers a killed worker's task once its visibility timeout
    passes. It can still lose one message a kill: kombu's Redis transport takes a message off
    the list (BRPOP) and records it as unacknowledged after, and a kill between the two loses
    it. The ledger must say exactly that: at most one lost per worker killed (4 here)."""
    runs = tmp_path / "runs"
    late = ("--set", "worker.env.ACKS_LATE=1")
    result = harness_cli(
        "run", "experiments/crashed-workers.yaml", *CELERY, *late, "--runs-dir", str(runs),
        timeout=240,
    )  # fmt: skip
    journal = journal_of(runs)
    checks = verdicts(journal)
    assert checks["all work is picked up within 30 s of the end of the load"] == "held", (
        result.stdout + result.stderr
    )
    ledger = journal["ledger"]
    assert ledger["lost"] <= 4, ledger
    lost = "held" if ledger["lost"] == 0 else "failed"
    assert checks["nothing acknowledged is lost"] == lost
    # A worker killed between its effect and its acknowledgement has the task done twice.
    twice = "held" if ledger["duplicated"] == 0 else "failed"
    assert checks["no effect is applied twice"] == twice
    assert_exact_ledger(ledger)


# Members busy enough that a killed one nearly always holds a batch counted and not committed.
WINDOWS = ("--target", "examples/kafka-windows", "--set", "load.rate=100/s",
           "--set", "worker.env.PROCESS_MS=30")  # fmt: skip
PROMISED = (
    "the output is exactly once, as the target promises",
    "the output holds one effect per message, as the target promises",
    "each partition's committed position is its records processed, as the target promises",
)


def run_windows(harness_cli, runs: Path, *extra: str) -> tuple[Any, dict[str, Any]]:  # type: ignore[no-untyped-def]
    result = harness_cli(
        "run", "experiments/crashed-workers.yaml", *WINDOWS, *extra, "--runs-dir", str(runs),
        timeout=300,
    )  # fmt: skip
    return result, journal_of(runs)


def windows_counted(journal: dict[str, Any]) -> int:
    with sqlite3.connect(Path(journal["run_dir"]) / "counts.db") as db:
        (counted,) = db.execute("SELECT SUM(n) FROM counts").fetchone()
    return int(counted)


def test_a_stream_processor_that_stores_its_offsets_with_its_counts_counts_each_event_once(
    harness_cli, tmp_path: Path
) -> None:
    """The target as shipped promises exactly once, and is judged on that promise."""
    result, journal = run_windows(harness_cli, tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = verdicts(journal)
    assert all(checks[name] == "held" for name in PROMISED), journal["checks"]
    ledger = journal["ledger"]
    assert ledger["duplicated"] == 0 and ledger["excess"] == 0 and ledger["lost"] == 0
    assert ledger["mismatched_positions"] == 0
    assert windows_counted(journal) == ledger["processed"] > 0
    assert_exact_ledger(ledger)


def test_a_stream_processors_counts_exceed_the_truth_by_exactly_the_duplicates(
    harness_cli, tmp_path: Path
) -> None:
    """With the offsets committed to Kafka after the counts, a killed member's batch is read and
    counted again by the member taking its partitions: the promise fails, the ledger's excess
    is the extra deliveries, and those partitions count more events than their committed
    position (which, drained, is their end)."""
    at_least_once = ("--set", "worker.env.OFFSETS=kafka")
    result, journal = run_windows(harness_cli, tmp_path / "runs", *at_least_once)
    checks = verdicts(journal)
    assert result.returncode == 1, result.stdout + result.stderr
    assert checks["nothing acknowledged is lost"] == "held", journal["checks"]
    assert checks["all work is picked up within 30 s of the end of the load"] == "held"
    assert all(checks[name] == "failed" for name in PROMISED), journal["checks"]
    ledger = journal["ledger"]
    assert ledger["unexpected"] == 0 and ledger["duplicated"] > 0
    # The truth is one count per event processed; every extra count is a delivery again.
    assert ledger["excess"] == ledger["deliveries"] - ledger["processed"] > 0
    assert windows_counted(journal) - ledger["processed"] == ledger["excess"]
    positions = json.loads((Path(journal["run_dir"]) / "ledger" / "positions.json").read_text())
    committed, processed = positions["committed"], positions["processed"]
    assert sum(processed.values()) - sum(committed.values()) == ledger["excess"]
    assert sum(committed.values()) == ledger["processed"]
    assert ledger["mismatched_positions"] == sum(processed[p] != committed[p] for p in processed)
    assert_exact_ledger(ledger)


def tutorial_shop(tmp_path: Path, harness_cli) -> Path:  # type: ignore[no-untyped-def]
    """The folder docs/tutorial.md builds: `harness init shop`, the app, the edits it names."""
    shop = tmp_path / "shop"
    assert harness_cli("init", "shop", "--dir", str(shop)).returncode == 0
    shutil.copytree(ROOT / "docs" / "tutorial" / "app", shop / "app")
    return shop


def run_shop(harness_cli, shop: Path) -> tuple[int, dict[str, Any]]:  # type: ignore[no-untyped-def]
    runs = shop / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    experiment = shop / "experiments" / "shop-crashed-workers.yaml"
    result = harness_cli("run", str(experiment), "--runs-dir", str(runs), timeout=240)
    return result.returncode, journal_of(runs)


def test_the_tutorial_finds_the_shops_lost_jobs_and_passes_once_they_are_fixed(
    harness_cli, tmp_path: Path
) -> None:
    shop = tutorial_shop(tmp_path, harness_cli)
    code, journal = run_shop(harness_cli, shop)
    assert code == 1, journal["checks"]
    assert verdicts(journal)["nothing acknowledged is lost"] == "failed"
    assert journal["ledger"]["lost"] > 0

    # The tutorial's fix: the worker that keeps what it holds, and the probe that counts it.
    shutil.copy(shop / "app" / "worker_fixed.py", shop / "app" / "worker.py")
    target = shop / "targets" / "shop.yaml"
    target.write_text(
        target.read_text().replace("--unacked, unacked,", "--unacked, 'processing:*',")
    )
    code, journal = run_shop(harness_cli, shop)
    assert code == 0, journal["checks"]
    assert journal["ledger"]["lost"] == 0 and journal["ledger"]["duplicated"] == 0
