"""What the console says at the end of a run, as text a pytest report or a log can hold."""

from __future__ import annotations

import io

from rich.console import Console

from harness.journal import Journal
from harness.repeat import summarize
from harness.report.console import (
    Plan,
    Progress,
    QuietProgress,
    catalogue_table,
    matrix_table,
    repeat_line,
    repeat_table,
    status_text,
    summary_text,
)
from harness.verdict import Verdict

JOURNAL_JSON = {
    "checks": [
        {"name": "nothing lost", "verdict": "held", "expected": "lost == 0", "observed": "0"},
        {"name": "drains", "verdict": "failed", "expected": "< 50", "observed": "812 at end"},
    ],
    "ledger": None,
    "verdict": "failed",
    "reason": None,
    "run_dir": "/tmp/runs/20261128T120000-x",
    "seed": 1234,
}
JOURNAL = Journal.from_json(JOURNAL_JSON)


def test_the_summary_names_each_check_the_verdict_and_the_seed() -> None:
    text = summary_text(JOURNAL)
    assert "812 at end" in text and "nothing lost" in text
    assert "verdict: failed" in text
    assert "(seed 1234)" in text
    assert "\x1b[" not in text  # plain text, no terminal colours


def test_user_text_is_shown_as_written_never_read_as_markup() -> None:
    check = {"name": "p95 latency [ms] [/x]", "verdict": "failed", "expected": "< [5]",
             "observed": "[bold]7[/bold]", "note": None}  # fmt: skip
    journal = {**JOURNAL_JSON, "checks": [check], "reason": "query [/red] failed"}
    text = summary_text(Journal.from_json(journal))
    for written in ("p95 latency [ms] [/x]", "< [5]", "[bold]7[/bold]", "query [/red] failed"):
        assert written in text


def test_the_catalogue_table_has_a_line_per_experiment() -> None:
    out = io.StringIO()
    rows = [("sound", Verdict.HELD, "runs/a"), ("weak", Verdict.FAILED, "runs/b")]
    Console(file=out, width=100, color_system=None).print(catalogue_table(rows))
    lines = [line for line in out.getvalue().splitlines() if "runs/" in line]
    assert len(lines) == 2
    assert "sound" in lines[0] and "held" in lines[0]
    assert "weak" in lines[1] and "failed" in lines[1]


def test_the_matrix_shows_every_check_observed_on_every_target() -> None:
    def journal(target: str, verdict: str, checks: list[tuple[str, str, str]]) -> Journal:
        return Journal.from_json(
            {
                "experiment": "paused-consumer",
                "target": target,
                "verdict": verdict,
                "checks": [
                    {"name": n, "verdict": v, "expected": "", "observed": o} for n, v, o in checks
                ],
            }
        )

    journals = [
        journal("redis-streams", "held", [("oldest", "held", "9.1"), ("lost", "held", "0")]),
        journal(
            "rabbitmq", "failed", [("oldest", "not-applicable", "why"), ("lost", "failed", "7")]
        ),
    ]
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(
        matrix_table([(j.target, j) for j in journals])
    )
    lines = out.getvalue().splitlines()
    header = next(line for line in lines if "redis-streams" in line)
    assert header.index("redis-streams") < header.index("rabbitmq")
    row = {line.split("│")[1].strip(): line.split("│")[2:4] for line in lines if "│" in line}
    assert [cell.strip() for cell in row["paused-consumer"]] == ["held", "failed"]
    assert [cell.strip() for cell in row["oldest"]] == ["9.1", "n/a"]
    assert [cell.strip() for cell in row["lost"]] == ["0", "7"]


PLAN = Plan(
    60.0,
    ((15.0, "apply slow-link (latency)"), (35.0, "heal slow-link (latency)"), (60.0, "load ends")),
    {"sent/s": 199.6, "depth": 1234.0, "lag": None},
)


def test_the_status_line_shows_progress_phase_next_event_and_live_numbers() -> None:
    text = status_text(PLAN, 20.2, "load")
    assert text.startswith("+20s/60s load")
    assert "next: heal slow-link (latency) in 15s" in text
    assert "sent/s 200 depth 1234 lag -" in text


def test_after_the_last_event_there_is_no_next() -> None:
    assert "next" not in status_text(PLAN, 61, "drain")


def test_plain_progress_prints_a_status_line_when_one_is_due() -> None:
    out = io.StringIO()
    progress = Progress(Console(file=out, width=200, color_system=None), every_s=0.0)
    progress.tick()  # before the load: nothing to show
    progress.begin(PLAN)
    progress.tick()
    progress.end()
    progress.tick()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "+0s/60s load" in lines[0]


def test_quiet_progress_says_nothing() -> None:
    out = io.StringIO()
    progress = QuietProgress(Console(file=out), every_s=0.0)
    progress.say("deployed")
    progress.begin(PLAN)
    progress.tick()
    assert out.getvalue() == ""


def test_a_repeat_shows_how_often_each_check_held_and_each_runs_value() -> None:
    def run(seed: int, verdict: str, observed: str) -> Journal:
        check = {"name": "worker-0 [up]", "verdict": verdict, "expected": "== 1"}
        return Journal.from_json({"experiment": "crash", "target": "redis-streams",
                                  "verdict": verdict, "seed": seed,
                                  "checks": [{**check, "observed": observed}]})  # fmt: skip

    repeat = summarize([run(7, "held", "1"), run(8, "failed", "0"), run(9, "held", "1")])
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    console.print(repeat_table(repeat))
    console.print(repeat_line(repeat))
    text = out.getvalue()
    assert "crash on redis-streams: 3 runs" in text
    assert "seed 7" in text and "seed 9" in text
    [row] = [line for line in text.splitlines() if "worker-0 [up]" in line]  # markup escaped
    assert "held in 2 of 3" in row and "flaky" in row
    assert [cell.strip() for cell in row.split("│")[3:6]] == ["1", "0", "1"]
    assert text.splitlines()[-1] == "crash on redis-streams: flaky, held in 2 of 3 runs"
