"""A run beside its control run: which checks the faults did not move, the journal's link, and
the table that shows both."""

from __future__ import annotations

import io

from rich.console import Console

from harness.journal import CheckResult, ControlLink, Journal
from harness.report.console import control_table
from harness.verdict import Verdict

HELD, FAILED = Verdict.HELD, Verdict.FAILED


def journal(verdict: Verdict, *checks: tuple[str, Verdict, str]) -> Journal:
    results = tuple(CheckResult(name, "ledger", v, "== 0", seen) for name, v, seen in checks)
    return Journal("r", "runs/r", "hung-workers", verdict, results)


CONTROL = journal(
    FAILED, ("backlog grows", FAILED, "12"), ("lost", HELD, "0"), ("p99", HELD, "0.1"),
    ("dead letters", FAILED, "3"),
)  # fmt: skip
FAULTED = journal(
    HELD, ("backlog grows", HELD, "640"), ("lost", HELD, "0"), ("p99", HELD, "0.4"),
    ("dead letters", FAILED, "5"), ("the fault hang took effect", HELD, "bit"),
)  # fmt: skip


def test_a_check_that_held_alike_in_both_runs_is_one_the_faults_did_not_move() -> None:
    link = ControlLink.of(CONTROL, FAULTED.checks)
    assert link.unmoved == ("lost",)
    assert (link.run_dir, link.verdict) == ("runs/r", FAILED)


def test_the_link_survives_the_journal() -> None:
    faulted = Journal.from_json(
        {**FAULTED.to_json(), "control": ControlLink.of(CONTROL, FAULTED.checks).to_json()}
    )
    assert faulted.control == ControlLink("r", "runs/r", FAILED, ("lost",))
    assert Journal.from_json({**CONTROL.to_json(), "faults_skipped": True}).faults_skipped
    assert Journal.from_json({"verdict": "held"}).control is None


def test_the_table_shows_each_check_without_and_with_the_faults() -> None:
    faulted = Journal.from_json(
        {**FAULTED.to_json(), "control": ControlLink.of(CONTROL, FAULTED.checks).to_json()}
    )
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(control_table(faulted, CONTROL))
    rows = {
        cells[0]: cells[1:]
        for line in out.getvalue().splitlines()
        if "│" in line and (cells := [c.strip() for c in line.split("│")[1:-1]])
    }
    assert rows["backlog grows"] == ["12", "640", "yes"]
    assert rows["lost"] == ["0", "0", "no: held alike"]
    assert rows["p99"] == ["0.1", "0.4", "yes"]
    assert rows["dead letters"] == ["3", "5", "no: failed without faults too"]
    assert rows["the fault hang took effect"] == ["-", "bit", ""]
