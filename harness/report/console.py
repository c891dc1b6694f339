"""The console: live progress lines while a run goes, and the verdict table at its end."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.verdict import Verdict

STYLES = {"held": "green", "failed": "red", "inconclusive": "yellow", "aborted": "magenta"}


class Progress:
    """Prints what the run is doing, with seconds since the run started."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.t0:6.1f}s[/dim]  {text}")


def verdict_table(checks: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(show_lines=False, header_style="bold")
    table.add_column("check")
    table.add_column("expected")
    table.add_column("observed")
    table.add_column("verdict")
    for check in checks:
        style = STYLES.get(check["verdict"], "")
        table.add_row(
            check["name"],
            check["expected"],
            check["observed"],
            f"[{style}]{check['verdict']}[/{style}]",
        )
    return table


def summary(console: Console, journal: Mapping[str, Any]) -> None:
    """The verdict table, the ledger in one line, and the run's verdict and folder."""
    if journal["checks"]:
        console.print(verdict_table(journal["checks"]))
    ledger = journal.get("ledger")
    if ledger:
        console.print(
            "ledger: {acknowledged} acknowledged, {processed} processed, {lost} lost, "
            "{duplicated} duplicated, {unexpected} unexpected, {indeterminate} "
            "indeterminate ({recovered} of them processed)".format(**ledger)
        )
    verdict = journal["verdict"]
    style = STYLES.get(verdict, "")
    reason = f" ({journal['reason']})" if journal.get("reason") else ""
    console.print(f"verdict: [bold {style}]{verdict}[/bold {style}]{reason}")
    console.print(f"run folder: {shown(Path(journal['run_dir']))} (seed {journal['seed']})")


def summary_text(journal: Mapping[str, Any], width: int = 110) -> str:
    """The summary as plain text, for reports that are not a terminal (a pytest failure)."""
    text = io.StringIO()
    summary(Console(file=text, width=width, color_system=None, highlight=False), journal)
    return text.getvalue()


def catalogue_table(rows: Sequence[tuple[str, Verdict, str]]) -> Table:
    """One line per experiment of a multi-experiment run: its verdict and its run folder."""
    table = Table(header_style="bold", title="experiments")
    for column in ("experiment", "verdict", "run folder or error"):
        table.add_column(column)
    for name, verdict, where in rows:
        style = STYLES.get(verdict.value, "")
        table.add_row(name, f"[{style}]{verdict.value}[/{style}]", where)
    return table


def shown(path: Path) -> Path:
    """Relative to the working directory when inside it: shorter, and what the user typed."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
