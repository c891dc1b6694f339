"""What the console says at the end of a run, as text a pytest report or a log can hold."""

from __future__ import annotations

import io

from rich.console import Console

from harness.report.console import catalogue_table, summary_text
from harness.verdict import Verdict

JOURNAL = {
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


def test_the_summary_names_each_check_the_verdict_and_the_seed() -> None:
    text = summary_text(JOURNAL)
    assert "812 at end" in text and "nothing lost" in text
    assert "verdict: failed" in text
    assert "(seed 1234)" in text
    assert "\x1b[" not in text  # plain text, no terminal colours


def test_the_catalogue_table_has_a_line_per_experiment() -> None:
    out = io.StringIO()
    rows = [("sound", Verdict.HELD, "runs/a"), ("weak", Verdict.FAILED, "runs/b")]
    Console(file=out, width=100, color_system=None).print(catalogue_table(rows))
    lines = [line for line in out.getvalue().splitlines() if "runs/" in line]
    assert len(lines) == 2
    assert "sound" in lines[0] and "held" in lines[0]
    assert "weak" in lines[1] and "failed" in lines[1]
