"""The console: live progress lines while a run goes, and the verdict table at its end."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from harness.journal import CheckResult, Journal
from harness.ledger import LedgerSummary
from harness.ledger.sources import PLACE_ROLES
from harness.repeat import RepeatSummary
from harness.verdict import Verdict

STYLES = {
    "held": "green",
    "failed": "red",
    "flaky": "dark_orange",
    "inconclusive": "yellow",
    "aborted": "magenta",
    "not-applicable": "dim",
}


@dataclass(frozen=True)
class Plan:
    """What the console shows a run against: the load's length and the faults' times."""

    duration_s: float
    # (seconds after load start, what happens then), in order.
    events: tuple[tuple[float, str], ...]
    numbers: Mapping[str, float | None]  # read live, by another thread


class Progress:
    """Prints what the run is doing, one line at a time, with seconds since the run started;
    while the load runs, a status line every ``every_s`` (for CI logs and pipes)."""

    def __init__(self, console: Console | None = None, every_s: float = 10.0) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.t0 = time.monotonic()
        self.every_s = every_s
        self.plan: Plan | None = None
        self.load_t0 = 0.0
        self.phase = "starting"
        self._last_status = 0.0

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.t0:6.1f}s[/dim]  {text}")

    def begin(self, plan: Plan) -> None:
        """The load has started: from now, the timeline runs."""
        self.plan, self.load_t0, self.phase = plan, time.monotonic(), "load"
        self._last_status = self.load_t0

    def enter(self, phase: str) -> None:
        self.phase = phase

    def tick(self) -> None:
        """Called often from the run loop; prints a status line when one is due."""
        now = time.monotonic()
        if self.plan is not None and now - self._last_status >= self.every_s:
            self._last_status = now
            self.say(f"[dim]{status_text(self.plan, now - self.load_t0, self.phase)}[/dim]")

    def end(self) -> None:
        self.plan = None


class LiveProgress(Progress):
    """For a terminal: a bar over the timeline with the phase, the next event and live
    numbers, redrawn every second below the lines already printed."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self._live: Live | None = None

    def begin(self, plan: Plan) -> None:
        super().begin(plan)
        self._live = Live(_Status(self), console=self.console, refresh_per_second=1, transient=True)
        self._live.start()

    def tick(self) -> None:
        pass  # the live display redraws itself

    def end(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        super().end()


class QuietProgress(Progress):
    """Says nothing: for --quiet and --json."""

    def say(self, text: str) -> None:
        pass

    def tick(self) -> None:
        pass


class _Status:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __rich__(self) -> Table:
        progress = self.progress
        plan = progress.plan
        grid = Table.grid(padding=(0, 1))
        if plan is None:
            return grid
        elapsed = time.monotonic() - progress.load_t0
        bar = ProgressBar(total=plan.duration_s, completed=min(elapsed, plan.duration_s), width=20)
        grid.add_row(bar, status_text(plan, elapsed, progress.phase))
        return grid


def status_text(plan: Plan, elapsed_s: float, phase: str) -> str:
    """``+12s/60s load; next: heal slow-link in 3s; sent/s 200 depth 1200 lag 1200 errors/s 0``."""
    parts = [f"+{elapsed_s:.0f}s/{plan.duration_s:g}s {phase}"]
    upcoming = next(((t, what) for t, what in plan.events if t > elapsed_s), None)
    if upcoming is not None:
        parts.append(f"next: {escape(str(upcoming[1]))} in {upcoming[0] - elapsed_s:.0f}s")
    numbers = " ".join(
        f"{name} {'-' if value is None else f'{value:.0f}'}" for name, value in plan.numbers.items()
    )
    return "; ".join([*parts, numbers]) if numbers else "; ".join(parts)


def verdict_table(checks: Sequence[CheckResult]) -> Table:
    table = Table(show_lines=False, header_style="bold")
    table.add_column("check")
    table.add_column("expected")
    table.add_column("observed")
    table.add_column("verdict")
    for check in checks:
        observed = escape(check.observed)
        if check.note:
            observed += f"\n[yellow]{escape(check.note)}[/yellow]"
        verdict = check.verdict.value
        table.add_row(
            escape(check.name), escape(check.expected), observed, _styled(verdict, verdict)
        )
    return table


def _placed(ledger: LedgerSummary) -> str:
    """The places that held unprocessed messages, when any did: ``127 dead-lettered, ``."""
    held = [(ledger.value(role), role.replace("_", "-")) for role in PLACE_ROLES]
    return "".join(f"{count} {name}, " for count, name in held if count)


def _order(ledger: LedgerSummary) -> str:
    """The order within keys, when the load had keys: ``; 0 reordered, 0 skipped``."""
    if ledger.reordered is None:
        return ""
    skipped = f"{ledger.skipped} skipped (longest run {ledger.max_gap})"
    return f"; {ledger.reordered} reordered, {skipped}"


def summary(console: Console, journal: Journal) -> None:
    """The verdict table, the ledger in one line, and the run's verdict and folder."""
    if journal.checks:
        console.print(verdict_table(journal.checks))
    if (ledger := journal.ledger) is not None:
        console.print(
            f"ledger: {ledger.acknowledged} acknowledged, {ledger.processed} processed, "
            f"{ledger.lost} lost, {_placed(ledger)}{ledger.duplicated} duplicated, "
            f"{ledger.unexpected} unexpected, {ledger.indeterminate} indeterminate "
            f"({ledger.recovered} of them processed){_order(ledger)}"
        )
    verdict = journal.verdict.value
    style = STYLES.get(verdict, "")
    reason = f" ({escape(journal.reason)})" if journal.reason else ""
    console.print(f"verdict: [bold {style}]{escape(verdict)}[/bold {style}]{reason}")
    run_dir = shown(journal.folder)
    console.print(
        f"run folder: {run_dir} (seed {journal.seed}); open {run_dir}/report.html", markup=False
    )


def summary_text(journal: Journal, width: int = 110) -> str:
    """The summary as plain text, for reports that are not a terminal (a pytest failure)."""
    text = io.StringIO()
    summary(Console(file=text, width=width, color_system=None, highlight=False), journal)
    return text.getvalue()


def catalogue_table(
    rows: Sequence[tuple[str, Verdict, str]], where: str = "run folder or error"
) -> Table:
    """One line per experiment of a multi-experiment run: its verdict and its run folder (or,
    with --repeat, what ``where`` names)."""
    table = Table(header_style="bold", title="experiments")
    for column in ("experiment", "verdict", where):
        table.add_column(column)
    for name, verdict, where in rows:
        table.add_row(name, styled_verdict(verdict), where)
    return table


def styled_verdict(verdict: Verdict) -> str:
    """A verdict's word in its colour."""
    return _styled(verdict.value, verdict.value)


def matrix_table(cells: Sequence[tuple[str, Journal]], by: str = "target") -> Table:
    """Check by combination, for the same experiments run over a matrix (``--target a,b``,
    ``--matrix``): a column per combination (its label), each cell what the check observed
    there, coloured by its verdict; each experiment's first row its verdicts."""
    columns = list(dict.fromkeys(label for label, _ in cells))
    runs = {(j.experiment, label): j for label, j in cells}
    table = Table(header_style="bold", title=f"checks by {by}", show_lines=False)
    table.add_column("experiment / check")
    for label in columns:
        table.add_column(escape(label))
    for experiment in dict.fromkeys(j.experiment for _, j in cells):
        ran = [runs.get((experiment, label)) for label in columns]
        verdicts = [_styled(j.verdict.value, j.verdict.value) if j else "-" for j in ran]
        table.add_row(f"[bold]{escape(experiment)}[/bold]", *verdicts)
        for name in dict.fromkeys(c.name for j in ran if j for c in j.checks):
            found = [_check(j, name) if j else None for j in ran]
            table.add_row(f"  {escape(name)}", *(_cell(check) for check in found))
    return table


def control_table(faulted: Journal, control: Journal) -> Table:
    """A run beside its control run (``--control``): each check's observed value without and
    with the faults; a check that held in both with the same value is marked as one the faults
    did not move."""
    title = f"{faulted.experiment}: without faults (control) and with them"
    table = Table(header_style="bold", title=escape(title))
    for column in ("check", "without faults", "with faults", "moved?"):
        table.add_column(column)
    unmoved = set(faulted.control.unmoved) if faulted.control else set()
    names = dict.fromkeys([*(c.name for c in control.checks), *(c.name for c in faulted.checks)])
    for name in names:
        without, with_ = _check(control, name), _check(faulted, name)
        table.add_row(
            escape(name), _cell(without), _cell(with_), _moved(name in unmoved, without, with_)
        )
    return table


def _moved(unmoved: bool, without: CheckResult | None, with_: CheckResult | None) -> str:
    """Whether the faults moved a check: not when it held alike in both runs, nor when it
    failed without them too."""
    if unmoved:
        return "[yellow]no: held alike[/yellow]"
    if without is None or with_ is None:
        return ""
    if without.verdict is with_.verdict is Verdict.FAILED:
        return "[yellow]no: failed without faults too[/yellow]"
    return "yes" if without.observed != with_.observed else ""


def _check(journal: Journal, name: str) -> CheckResult | None:
    return next((c for c in journal.checks if c.name == name), None)


def _cell(check: CheckResult | None) -> str:
    """A check's observed value coloured by its verdict; ``-`` where it was not judged."""
    if check is None:
        return "-"
    if check.verdict is Verdict.NOT_APPLICABLE:
        return _styled(check.verdict.value, "n/a")
    return _styled(check.verdict.value, check.observed)


def repeat_table(repeat: RepeatSummary) -> Table:
    """After the K runs of a variant: per check, how often it held, what each run observed
    (coloured by that run's verdict) and the check's repeat verdict."""
    title = f"{repeat.experiment} on {repeat.target}: {repeat.runs} runs"
    table = Table(header_style="bold", title=escape(title))
    table.add_column("check")
    table.add_column("how often")
    for i, seed in enumerate(repeat.seeds, 1):
        table.add_column(f"run {i}" if seed is None else f"run {i}\nseed {seed}")
    table.add_column("verdict")
    for check in repeat.checks:
        observed = [
            _styled(v.value, "-" if o is None else o)
            for v, o in zip(check.verdicts, check.observed, strict=True)
        ]
        verdict = check.verdict.value
        held = f"held in {check.held} of {repeat.runs}"
        table.add_row(escape(check.name), held, *observed, _styled(verdict, verdict))
    return table


def repeat_line(repeat: RepeatSummary) -> str:
    """``slow-consumer on redis-streams: flaky, held in 3 of 5 runs``, as markup."""
    verdict = repeat.verdict.value
    return (
        f"{escape(repeat.experiment)} on {escape(repeat.target)}: "
        f"[bold]{_styled(verdict, verdict)}[/bold], held in {repeat.held} of {repeat.runs} runs"
    )


def _styled(verdict: str, text: str) -> str:
    style = STYLES.get(verdict, "")
    return f"[{style}]{escape(text)}[/{style}]" if style else escape(text)


def shown(path: Path) -> Path:
    """Relative to the working directory when inside it: shorter, and what the user typed."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
