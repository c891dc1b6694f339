"""The experiment catalogue against the Redis Streams reference target, on real components.

Each experiment holds against the target as shipped; with the protection it is about switched
off, it fails on the check that names that weakness. slow-consumer has its own pair of tests
in test_run.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.ledger import EXAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOLDS = [
    "crashed-workers",
    "paused-consumer",
    "broker-partition",
    "broker-restart",
    "poison-messages",
    "backpressure",
    "failure-isolation",
]

# Shorter runs of the same faults, where a weakness shows as surely in less time: two kills
# 6 s apart, the second while the survivors still work off the first one's backlog; a shorter
# outage of the notifier. (One hang of the paused worker instead of two left the oldest
# message at 12.5 s against the 12 s bound: too thin.)
TWO_QUICK_KILLS = (
    "load.duration=20s",
    "timeline.0.at=4s",
    "timeline.0.for=4s",
    "timeline.0.every=6s",
)
SHORT_OUTAGE = ("load.duration=18s", "timeline.0.at=5s", "timeline.0.for=10s")

# (experiment, the switch that removes its protection, the check that must fail, shortening)
WEAKENED = [
    ("crashed-workers", "worker.env.ACK_MODE=before", "nothing acknowledged is lost",
     TWO_QUICK_KILLS),
    ("crashed-workers", "sink.env.IDEMPOTENT=0", "no effect is applied twice", TWO_QUICK_KILLS),
    ("crashed-workers", "worker.env.CLAIM_IDLE_MS=0",
     "the dead workers' pending messages are claimed by the survivors", TWO_QUICK_KILLS),
    ("paused-consumer", "worker.env.CLAIM_IDLE_MS=0",
     "no message waits more than 12 s while the worker hangs", ()),
    ("broker-partition", "worker.env.ACK_MODE=before", "nothing acknowledged is lost", ()),
    ("broker-restart", "broker.vars.appendonly=no", "nothing acknowledged is lost", ()),
    ("poison-messages", "worker.env.DLQ=0",
     "every poison job ends in the dead-letter stream", ()),
    ("backpressure", "api.env.MAX_BACKLOG=0",
     "the backlog stays under its bound (1000, plus what is in flight)", ()),
    ("failure-isolation", "api.env.NOTIFY_MODE=sync",
     "the API's error rate stays under 1 % while the notifier is down", SHORT_OUTAGE),
]  # fmt: skip

LEDGER_COUNTS = ("lost", "duplicated", "unexpected", "recovered")


def run(harness_cli, name: str, runs_dir: Path, *extra: str) -> tuple[Any, dict[str, Any]]:  # type: ignore[no-untyped-def]
    result = harness_cli(
        "run", f"experiments/{name}.yaml", "--runs-dir", str(runs_dir), *extra, timeout=240
    )
    (run_dir,) = runs_dir.iterdir()
    journal: dict[str, Any] = json.loads((run_dir / "journal.json").read_text())
    return result, journal


def verdicts(journal: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["verdict"] for c in journal["checks"]}


def assert_exact_ledger(ledger: dict[str, Any]) -> None:
    """Counts add up, and every count above zero comes with example ids."""
    assert ledger["processed"] <= ledger["deliveries"]
    assert ledger["acknowledged"] + ledger["failed"] + ledger["indeterminate"] > 0
    for kind in LEDGER_COUNTS:
        examples = ledger["examples"][kind]
        assert len(examples) == min(ledger[kind], EXAMPLES), (kind, ledger)
        assert len(set(examples)) == len(examples)


@pytest.mark.parametrize("name", HOLDS)
def test_the_experiment_holds_against_the_target_as_shipped(
    harness_cli, tmp_path: Path, name: str
) -> None:
    result, journal = run(harness_cli, name, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal["verdict"] == "held"
    assert set(verdicts(journal).values()) == {"held"}, journal["checks"]
    assert journal["ledger"]["acknowledged"] > 1000
    assert_exact_ledger(journal["ledger"])


@pytest.mark.parametrize(
    ("name", "switch", "failing", "shorter"),
    WEAKENED,
    ids=[f"{n}:{s}" for n, s, _, _ in WEAKENED],
)
def test_without_its_protection_the_experiment_fails_on_the_check_that_names_it(
    harness_cli, tmp_path: Path, name: str, switch: str, failing: str, shorter: tuple[str, ...]
) -> None:
    sets = [arg for each in (switch, *shorter) for arg in ("--set", each)]
    result, journal = run(harness_cli, name, tmp_path, *sets)
    assert result.returncode == 1, result.stdout + result.stderr
    assert journal["verdict"] == "failed"
    assert verdicts(journal)[failing] == "failed", journal["checks"]
    assert_exact_ledger(journal["ledger"])
    check = next(c for c in journal["checks"] if c["name"] == failing)
    if check["kind"] == "ledger":  # the journal shows which messages: lost ones, duplicated ones
        kind = check["expected"].split()[0]
        assert journal["ledger"][kind] > 0 and journal["ledger"]["examples"][kind]


def test_the_same_seed_gives_the_same_choices_and_the_same_verdict(
    harness_cli, tmp_path: Path
) -> None:
    """Three shortened crashed-workers runs with one seed: same replicas killed, same verdict."""
    short = [
        "--seed", "7", "--set", "load.duration=16s", "--set", "timeline.0.at=4s",
        "--set", "timeline.0.for=4s", "--set", "timeline.0.times=1",
    ]  # fmt: skip
    outcomes = []
    for attempt in range(3):
        runs = tmp_path / str(attempt)
        result, journal = run(harness_cli, "crashed-workers", runs, *short)
        killed = [e["value"]["replicas"] for e in journal["timeline"] if e["kind"] == "fault.apply"]
        outcomes.append((result.returncode, journal["verdict"], journal["seed"], killed))
    assert outcomes[0][:3] == (0, "held", 7), outcomes[0]
    assert all(o == outcomes[0] for o in outcomes), outcomes
