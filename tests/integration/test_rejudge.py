"""`harness report RUN --rejudge`: a real run judged again from its folder alone (its own
Prometheus data served again, its ledger files, its journal) gives the checks the live run
gave; a check changed in the run's experiment copy is judged anew on the same data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHORT = ("--set", "load.duration=30s", "--set", "timeline.0.at=6s", "--set", "timeline.0.for=10s",
         "--set", "checks.2.from=fault.end+5s")  # fmt: skip


def test_a_stored_run_judged_again_gives_the_live_checks(harness_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runs = tmp_path / "runs"
    harness_cli("run", "experiments/slow-consumer.yaml", "--runs-dir", str(runs), *SHORT)
    (run_dir,) = runs.iterdir()
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["journal_version"] == 2
    live = [(c["name"], c["verdict"], c["observed"]) for c in journal["checks"]]
    assert any(verdict == "held" for _, verdict, _ in live), live

    again = harness_cli("report", str(run_dir), "--rejudge")
    assert again.returncode == journal_exit(journal["verdict"]), again.stdout + again.stderr
    assert "rejudged: every check as the run judged it" in again.stdout, again.stdout
    assert json.loads((run_dir / "journal.json").read_text()) == journal  # nothing rewritten

    # The same data, a stricter bound: the check that held is judged anew and now fails.
    copy = run_dir / "experiment.yaml"
    copy.write_text(copy.read_text().replace("> 500'", "> 500000'"))
    stricter = harness_cli("report", str(run_dir), "--rejudge")
    assert stricter.returncode == 1, stricter.stdout + stricter.stderr
    assert "changed: backlog builds while consumers are slow: held (" in stricter.stdout
    assert "-> failed (" in stricter.stdout


def test_a_folder_without_a_judged_run_is_bad_input(harness_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "aborted"
    (run_dir / "prometheus").mkdir(parents=True)
    journal = {"run_id": "x", "run_dir": str(run_dir), "verdict": "aborted", "checks": [],
               "reason": "interrupted by SIGINT"}  # fmt: skip
    (run_dir / "journal.json").write_text(json.dumps(journal))
    result = harness_cli("report", str(run_dir), "--rejudge")
    assert result.returncode == 3
    assert "nothing to judge again" in " ".join(result.stderr.split())


def journal_exit(verdict: str) -> int:
    return {"held": 0, "failed": 1, "inconclusive": 2, "aborted": 2}[verdict]
