"""A saturated host: what it does to the timing checks that looked while it was, and how their
note reads in the journal, the console, JUnit and report.html.

Prometheus answers are hand-written, as in test_checks; the run that saturates a real host is
tests/integration/test_host_saturation.py.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from harness.checks import (
    Check,
    CheckResult,
    Evidence,
    LedgerCheck,
    RecoveryCheck,
    ThresholdCheck,
    WindowCheck,
    evaluate,
)
from harness.journal import Journal
from harness.ledger import summarize
from harness.ledger.files import SendOutcome
from harness.observe.footprint import HostSpan
from harness.observe.promql import PromQL
from harness.report import html, junit
from harness.report.charts import Chart, Line
from harness.report.console import verdict_table
from harness.verdict import Verdict
from tests.unit.test_checks import MOMENTS, T0, FakePrometheus, matrix, vector

# load.start is T0: the host was saturated from +40s to +52s
SPAN = HostSpan(T0 + 40, T0 + 52, 0.99, 2)
WHY = "the host's CPU was saturated from +40s to +52s (all 2 cores busy)"
MOMENTS_AROUND = {**MOMENTS, "fault.start": T0 + 30, "fault.end": T0 + 45}


def judged(
    check: Check, body: dict[str, Any], saturated: tuple[HostSpan, ...] = (SPAN,)
) -> CheckResult:
    """``check`` judged by a Prometheus that answers ``body``, beside a ledger of 3 messages."""
    promql = PromQL("http://prom.test", transport=httpx.MockTransport(FakePrometheus(body)))
    ids = ["m1", "m2", "m3"]
    ledger = summarize(dict.fromkeys(ids, SendOutcome.OK), Counter(ids))
    evidence = Evidence(promql, MOMENTS_AROUND, ledger, saturated=saturated)
    return evaluate(check, evidence)


def window(expect: str, start: str = "fault.start", end: str = "fault.end") -> WindowCheck:
    return WindowCheck.model_validate(
        {"name": "w", "query": "sum(q)", "from": start, "to": end, "expect": expect}
    )


SERIES = matrix(({}, [(T0 + 40, "12"), (T0 + 41, "13")]))


def test_a_window_that_failed_while_the_host_was_saturated_is_inconclusive_and_says_why() -> None:
    result = judged(window("< 10"), SERIES)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.observed == "12 at +40s, worst 13 at +41s (2 of 2 samples breach)"  # kept
    assert result.note == (
        f"{WHY}, inside this check's window: the machine, not the system, may be why it failed"
    )


def test_a_hold_while_the_host_was_saturated_stays_held_with_the_fact_as_a_note() -> None:
    result = judged(window("< 50"), SERIES)
    assert (result.verdict, result.note) == (Verdict.HELD, f"{WHY}, inside this check's window")


def test_a_threshold_at_a_moment_inside_the_span_is_judged_the_same() -> None:
    check = ThresholdCheck.model_validate(
        {"name": "t", "query": "sum(q)", "at": "fault.end", "expect": "> 500"}
    )
    result = judged(check, vector(({}, "12")))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.note is not None and result.note.startswith(f"{WHY}, at this check's moment:")


def test_a_recovery_looks_from_after_to_after_plus_within() -> None:
    def recovery(after: str) -> RecoveryCheck:
        return RecoveryCheck.model_validate(
            {"name": "r", "recovers": "sum(q) < 5", "after": after, "within": "5s"}
        )

    never = matrix(({}, [(T0 + 60, "9"), (T0 + 61, "9")]))
    # fault.start+6s..+11s: +36s to +41s reaches into the span; load.start: +0s to +5s does not
    assert judged(recovery("fault.start+6s"), never).verdict is Verdict.INCONCLUSIVE
    assert judged(recovery("load.start"), never).verdict is Verdict.FAILED


def test_a_window_that_does_not_overlap_the_span_is_untouched() -> None:
    result = judged(window("< 10", "load.start", "fault.start"), SERIES)  # +0s to +30s
    assert (result.verdict, result.note) == (Verdict.FAILED, None)
    assert judged(window("< 10"), SERIES, saturated=()).verdict is Verdict.FAILED


def test_a_ledger_check_is_not_about_time_and_is_untouched() -> None:
    lost = LedgerCheck.model_validate({"name": "l", "ledger": "acknowledged", "expect": "> 5"})
    result = judged(lost, SERIES)
    assert (result.verdict, result.note) == (Verdict.FAILED, None)


def test_an_inconclusive_check_stays_inconclusive_without_a_note() -> None:
    result = judged(window("< 10"), matrix())
    assert (result.verdict, result.observed, result.note) == (
        Verdict.INCONCLUSIVE,
        "no data from fault.start to fault.end",
        None,
    )


# ---------------------------------------------------------------- rendering

NOTE = f"{WHY}, inside this check's window: the machine, not the system, may be why it failed"
CHECKS = [
    CheckResult("w", "window", Verdict.INCONCLUSIVE, "< 10", "12 at +40s", (T0,), NOTE),
    CheckResult("h", "window", Verdict.HELD, "< 50", "12 to 13", (T0,), f"{WHY}, inside"),
    CheckResult("l", "ledger", Verdict.HELD, "lost == 0", "0"),
]


def test_the_journal_writes_the_note_and_null_without_one() -> None:
    assert CHECKS[0].to_json()["note"] == NOTE
    assert CHECKS[2].to_json()["note"] is None


def test_the_console_shows_the_note_under_what_was_observed() -> None:
    out = io.StringIO()
    Console(file=out, width=300, color_system=None).print(verdict_table(CHECKS))
    lines = out.getvalue().splitlines()
    row = next(i for i, line in enumerate(lines) if "12 at +40s" in line)
    assert NOTE in lines[row + 1] and "inconclusive" in lines[row]


def test_junit_gives_the_note_in_the_inconclusive_message_and_beside_a_hold(
    tmp_path: Path,
) -> None:
    junit.write(tmp_path / "j.xml", [junit.Suite("e", [junit.Case.of(c) for c in CHECKS], 1)])
    inconclusive, held, ledger = ET.parse(tmp_path / "j.xml").getroot().iter("testcase")
    error = inconclusive.find("error")
    assert error is not None
    assert error.get("message") == f"expected < 10; observed 12 at +40s; {NOTE}"
    assert held.findtext("system-out") == f"expected < 50; observed 12 to 13; {WHY}, inside"
    assert ledger.findtext("system-out") == "expected lost == 0; observed 0"


def journal(checks: list[dict[str, Any]], timeline: list[dict[str, Any]]) -> Journal:
    return Journal.from_json({
        "experiment": "e", "target": "t", "verdict": "inconclusive", "run_id": "r",
        "started_at": "now", "duration_s": 1.0, "seed": 1, "overrides": [], "reason": None,
        "moments": {"load.start": T0, "end": T0 + 90}, "checks": checks, "timeline": timeline,
        "ledger": None, "experiment_file": "gone.yaml",
    })  # fmt: skip


CHART = [Chart("Backlog", "short", "why", [Line("waiting", [(T0, 1.0), (T0 + 60, 2.0)])])]


def test_the_report_shows_the_note_and_shades_each_saturation(tmp_path: Path) -> None:
    saturated = {
        "kind": "host.saturated", "target": "host", "t_invoke": T0 + 40, "t_complete": T0 + 52,
        "outcome": "fail", "value": {"busy": 0.99, "cores": 2},
    }  # fmt: skip
    page = html.write(tmp_path, journal([c.to_json() for c in CHECKS], [saturated]), CHART)
    text = page.read_text()
    assert f'<div class="note">{NOTE}</div>'.replace("'", "&#39;") in text
    assert text.count('<rect class="saturated"') == 1
    assert "CPU saturated: 99% of 2 cores busy</title></rect>" in text
    assert '<i class="swatch saturated"></i>' in text  # the chart's key says what the shade is


def test_a_journal_from_before_notes_still_renders(tmp_path: Path) -> None:
    old = {k: v for k, v in CHECKS[2].to_json().items() if k != "note"}
    text = html.write(tmp_path, journal([old], []), CHART).read_text()
    assert 'class="note"' not in text and 'class="saturated"' not in text
    out = io.StringIO()
    (read,) = journal([old], []).checks
    Console(file=out, width=200, color_system=None).print(verdict_table([read]))
    assert "lost == 0" in out.getvalue()
    junit.write(tmp_path / "j.xml", [junit.Suite("e", [junit.Case.of(read)], 1)])
    assert ET.parse(tmp_path / "j.xml").getroot().findtext(".//system-out") == (
        "expected lost == 0; observed 0"
    )
