"""The command line: parse arguments, call the library, map the result to an exit code.

Exit codes: 0 held, 1 a check failed, 2 inconclusive or the environment is not ready (also an
aborted run), 3 bad input, 128+N interrupted by signal N. No command prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import components
from harness.errors import HarnessError
from harness.journal import read_journal
from harness.loader import load_experiment
from harness.report.console import Progress, summary
from harness.verdict import Verdict

EXIT_BAD_INPUT = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        code: int = args.command(args, out)
    except HarnessError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


def _run(args: argparse.Namespace, out: Console) -> int:
    from harness.runner import run  # the runner pulls in every step; validate need not

    experiment = load_experiment(Path(args.file), args.set)
    result = run(
        experiment,
        runs_dir=Path(args.runs_dir),
        seed=args.seed,
        progress=Progress(Console(stderr=True, highlight=False)),
        overrides=tuple(args.set),
    )
    summary(out, result.journal)
    if result.error is not None:
        raise result.error
    return result.verdict.exit_code


def _validate(args: argparse.Namespace, out: Console) -> int:
    worst = 0
    for name in args.files:
        try:
            experiment = load_experiment(Path(name), args.set)
        except HarnessError as exc:
            Console(stderr=True, highlight=False).print(
                f"[red]invalid:[/red] {exc}", soft_wrap=True
            )
            worst = max(worst, exc.exit_code)
            continue
        faults = _count(len(experiment.faults), "fault")
        checks = _count(len(experiment.spec.checks), "check")
        out.print(
            f"[green]ok[/green] {name}: {experiment.name} on {experiment.topology.name}, "
            f"{faults}, {checks}"
        )
    return worst


def _report(args: argparse.Namespace, out: Console) -> int:
    journal = read_journal(Path(args.run_dir))
    console = Console(record=True, width=110, highlight=False) if args.svg else out
    summary(console, journal)
    if args.svg:
        Path(args.svg).write_text(console.export_svg(title=f"harness run: {journal['run_id']}"))
        out.print(f"wrote {args.svg}")
    return Verdict(journal["verdict"]).exit_code


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _doctor(args: argparse.Namespace, out: Console) -> int:
    statuses = components.doctor()
    out.print(_status_table(statuses))
    return 0 if all(s.found for s in statuses) else 2


def _setup(args: argparse.Namespace, out: Console) -> int:
    statuses = components.setup(lambda line: out.print(f"[dim]$ {line}[/dim]"))
    out.print(_status_table(statuses))
    return 0


def _status_table(statuses: Sequence[components.Status]) -> Table:
    table = Table(header_style="bold")
    for column in ("component", "found", "version", "path or how to install"):
        table.add_column(column)
    for s in statuses:
        found = "[green]yes[/green]" if s.found else "[red]no[/red]"
        table.add_row(s.name, found, s.version or "", str(s.path) if s.path else s.install_hint)
    return table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Chaos experiments for asynchronous systems: deploy a target, drive load, "
        "inject faults, check metrics and the message ledger, and exit with a verdict.",
        epilog="exit codes: 0 held, 1 failed, 2 inconclusive/aborted/environment, 3 bad input",
    )
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run an experiment and exit with its verdict")
    run.add_argument("file", help="experiment YAML file, such as experiments/slow-consumer.yaml")
    run.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    run.add_argument("--seed", type=int, help="seed for every random choice (default: random)")
    run.set_defaults(command=_run)

    validate = commands.add_parser("validate", help="check experiment files without running them")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(command=_validate)

    for sub in (run, validate):
        sub.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="PATH=VALUE",
            help="override a field of the experiment (load.rate=100/s) or of a target "
            "component (worker.replicas=1, worker.env.PROCESS_MS=50); repeatable",
        )

    report = commands.add_parser(
        "report", help="print a finished run's verdict table again, from its journal"
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, such as runs/<id>")
    report.add_argument("--svg", metavar="FILE", help="also save the table as an SVG picture")
    report.set_defaults(command=_report)

    doctor = commands.add_parser("doctor", help="list the real components and their versions")
    doctor.set_defaults(command=_doctor)
    setup = commands.add_parser("setup", help="install the real components that are missing")
    setup.set_defaults(command=_setup)
    return parser


if __name__ == "__main__":
    sys.exit(main())
