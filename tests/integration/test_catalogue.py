"""The experiment catalogue against the Redis Streams reference target, on real components.

Each experiment holds against the target as shipped; with the protection it is about switched
off, it fails on the check that names that weakness. The pairs are
``tests/integration/catalogue.py``'s; slow-consumer has its own pair of tests in test_run.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.ledger.summary import EXAMPLES
from tests.integration.catalogue import SHIPPED, WEAKENED, Variant

# stalled-worker's rate is a share of its target's capacity: a machine without a recent
# measurement of it makes one first (about two minutes) within the run.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(540)]

# slow-consumer's pair lives in test_run.py, with the checks of the run folder around it.
HOLDS = [v for v in SHIPPED if v.experiment != "slow-consumer"]
WEAK = [v for v in WEAKENED if v.experiment != "slow-consumer"]

LEDGER_COUNTS = (
    "lost", "duplicated", "unexpected", "recovered", "dead_lettered", "delayed", "pending"
)  # fmt: skip


def run(harness_cli, name: str, runs_dir: Path, *extra: str) -> tuple[Any, dict[str, Any]]:  # type: ignore[no-untyped-def]
    result = harness_cli(
        "run", f"experiments/{name}.yaml", "--runs-dir", str(runs_dir), *extra, timeout=480
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


@pytest.mark.parametrize("variant", HOLDS, ids=[v.label for v in HOLDS])
def test_the_experiment_holds_against_the_target_as_shipped(
    harness_cli, tmp_path: Path, variant: Variant
) -> None:
    result, journal = run(harness_cli, variant.experiment, tmp_path, *variant.sets(shorter=True))
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal["verdict"] == "held"
    assert set(verdicts(journal).values()) == {"held"}, journal["checks"]
    assert journal["ledger"]["acknowledged"] > 1000
    assert_exact_ledger(journal["ledger"])


@pytest.mark.parametrize("variant", WEAK, ids=[v.label for v in WEAK])
def test_without_its_protection_the_experiment_fails_on_the_check_that_names_it(
    harness_cli, tmp_path: Path, variant: Variant
) -> None:
    result, journal = run(harness_cli, variant.experiment, tmp_path, *variant.sets(shorter=True))
    assert result.returncode == 1, result.stdout + result.stderr
    assert journal["verdict"] == "failed"
    assert_exact_ledger(journal["ledger"])
    for name in variant.must_fail:
        assert verdicts(journal)[name] == "failed", journal["checks"]
        check = next(c for c in journal["checks"] if c["name"] == name)
        if check["kind"] == "ledger":  # the journal shows which messages: lost, duplicated ones
            kind = check["expected"].split()[0]
            assert journal["ledger"][kind] > 0 and journal["ledger"]["examples"][kind]


def test_the_same_seed_gives_the_same_choices_and_the_same_verdict(
    harness_cli, tmp_path: Path
) -> None:
    """Two shortened crashed-workers runs with one seed: same replicas killed, same verdict."""
    short = [
        "--seed", "7", "--set", "load.duration=16s", "--set", "timeline.0.at=4s",
        "--set", "timeline.0.for=4s", "--set", "timeline.0.times=1",
    ]  # fmt: skip
    outcomes = []
    for attempt in range(2):
        runs = tmp_path / str(attempt)
        result, journal = run(harness_cli, "crashed-workers", runs, *short)
        killed = [e["value"]["replicas"] for e in journal["timeline"] if e["kind"] == "fault.apply"]
        outcomes.append((result.returncode, journal["verdict"], journal["seed"], killed))
    assert outcomes[0][:3] == (0, "held", 7), outcomes[0]
    assert all(o == outcomes[0] for o in outcomes), outcomes
