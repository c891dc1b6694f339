"""JUnit XML: one test case per check, so CI systems show checks beside their own tests.

One file holds one test suite per experiment run: a run's own ``junit.xml`` has one, and
``harness run FOLDER --junit PATH`` writes one file for the whole catalogue. With ``--repeat K``
each run's suite is ``<experiment> (run i of K)``, and one more suite per variant,
``<experiment> (K runs)``, has each check with its repeat verdict (flaky is a failure).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.journal import CheckResult, Journal
from harness.repeat import RepeatSummary
from harness.verdict import Verdict


@dataclass(frozen=True)
class Case:
    """One check as a JUnit test case; ``message`` replaces the expected-and-observed text as
    a failure's message (a repeat's "held in n of K runs")."""

    name: str
    verdict: Verdict
    expected: str
    observed: str
    note: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, check: CheckResult) -> Case:
        return cls(check.name, check.verdict, check.expected, check.observed, check.note)


@dataclass(frozen=True)
class Suite:
    """One experiment run (or a variant's repeat) as JUnit sees it; ``error`` is why the run
    itself went wrong."""

    experiment: str
    checks: Sequence[Case]
    duration_s: float
    error: str | None = None

    @classmethod
    def of(cls, journal: Journal, name: str | None = None) -> Suite:
        cases = [Case.of(c) for c in journal.checks]
        return cls(name or journal.experiment, cases, journal.duration_s, journal.reason)

    @classmethod
    def of_repeat(cls, repeat: RepeatSummary, name: str | None = None) -> Suite:
        """The checks of a variant's K runs (``name``: the variant's, with its combination),
        each with its repeat verdict; the message says how often it held, the text what each
        run observed."""
        checks = [
            Case(
                c.name, c.verdict, c.expected, _per_run(c.observed),
                message=f"held in {c.held} of {repeat.runs} runs",
            )
            for c in repeat.checks
        ]  # fmt: skip
        return cls(f"{name or repeat.experiment} ({repeat.runs} runs)", checks, repeat.duration_s)


def run_name(experiment: str, i: int, runs: int) -> str:
    """The suite name of the i-th of ``runs`` runs: the experiment's alone when it ran once."""
    return experiment if runs == 1 else f"{experiment} (run {i} of {runs})"


def _per_run(observed: Sequence[str | None]) -> str:
    shown = ["not judged" if o is None else o for o in observed]
    if len(set(shown)) == 1:
        return shown[0]
    return "; ".join(f"run {i}: {o}" for i, o in enumerate(shown, 1))


def write(path: Path, suites: Sequence[Suite]) -> None:
    root = ET.Element("testsuites")
    root.extend(_suite(s) for s in suites)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _suite(run: Suite) -> ET.Element:
    checks, name = run.checks, run.experiment
    failures = sum(1 for c in checks if c.verdict in (Verdict.FAILED, Verdict.FLAKY))
    broken = (Verdict.INCONCLUSIVE, Verdict.ABORTED)
    errors = sum(1 for c in checks if c.verdict in broken) + bool(run.error)
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(checks) + bool(run.error)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(sum(1 for c in checks if c.verdict is Verdict.NOT_APPLICABLE)),
        time=f"{run.duration_s:.3f}",
    )
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname=name, name=check.name)
        text = f"expected {check.expected}; observed {check.observed}"
        if check.note:  # the host was saturated: said with the verdict, held or not
            text += f"; {check.note}"
        message = check.message or text
        kind = check.verdict.value
        if check.verdict in (Verdict.FAILED, Verdict.FLAKY):
            ET.SubElement(case, "failure", message=message, type=kind).text = text
        elif check.verdict is Verdict.NOT_APPLICABLE:
            ET.SubElement(case, "skipped", message=check.observed)
        elif check.verdict is not Verdict.HELD:
            ET.SubElement(case, "error", message=message, type=kind).text = text
        else:
            ET.SubElement(case, "system-out").text = text
    if run.error:
        case = ET.SubElement(suite, "testcase", classname=name, name="run")
        ET.SubElement(case, "error", message=run.error, type="run").text = run.error
    return suite
