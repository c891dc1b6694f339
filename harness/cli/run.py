"""``harness run``: every file loaded before the first run starts, each run (and each repeat)
told as it ends, and the exit code of the worst verdict."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from harness import repeat, secrets, syntax
from harness.errors import HarnessError, Interrupted, SpecError
from harness.journal import Journal
from harness.load import RemoteWorkers
from harness.loader import experiment_files, load_experiment
from harness.report import junit
from harness.report.console import (
    LiveProgress,
    Progress,
    QuietProgress,
    catalogue_table,
    matrix_table,
    repeat_line,
    repeat_table,
    shown,
    summary,
)
from harness.verdict import Verdict, merge

if TYPE_CHECKING:
    from grafana_client.api import GrafanaApi


def cmd_run(args: argparse.Namespace, out: Console) -> int:
    from harness.runner import run  # the runner pulls in every step; validate need not

    # Every file is loaded before anything starts: bad input in the last one costs no run.
    times = _repeat(args)
    experiments = [(load_experiment(path, sets), sets) for path, sets in variants(args)]
    syntax.before_runs(experiment for experiment, _ in experiments)
    remote = remote_load_workers(args)
    grafana_api = grafana(args)
    err = Console(stderr=True, highlight=False)
    remove_leftovers(err)
    suites: list[junit.Suite] = []
    rows: list[tuple[str, Verdict, str]] = []
    runs: list[dict[str, Any]] = []  # for --json
    journals: list[Journal] = []  # for the table of several targets
    repeats: list[repeat.RepeatSummary] = []  # one per variant
    try:
        for experiment, sets in experiments:
            variant: list[Journal | repeat.Unopened] = []  # for its repeat summary
            for i, seed in enumerate(repeat.seeds(args.seed, times), 1):
                name = junit.run_name(experiment.name, i, times)
                try:
                    result = run(
                        experiment,
                        runs_dir=Path(args.runs_dir),
                        seed=seed,
                        progress=_progress(args, err),
                        overrides=tuple(sets),
                        remote_load_workers=remote,
                        grafana_api=grafana_api,
                    )
                except Interrupted:
                    raise
                except HarnessError as exc:  # the run could not even open: a missing component
                    tell_error(err, "error", exc)
                    suites.append(junit.Suite(name, [], 0.0, str(exc)))
                    rows.append((experiment.name, Verdict.INCONCLUSIVE, str(exc)))
                    unopened = {"experiment": experiment.name, "verdict": "inconclusive"}
                    runs.append({**unopened, "error": str(exc)})
                    variant.append(repeat.Unopened(experiment.name, experiment.topology.name, seed))
                    continue
                _tell(args, out, result.journal)
                journals.append(result.journal)
                variant.append(result.journal)
                runs.append(result.journal.brief())
                suites.append(junit.Suite.of(result.journal, name))
                rows.append((experiment.name, result.verdict, str(shown(result.run_dir))))
                if isinstance(result.error, Interrupted):
                    raise result.error
                if result.error is not None:
                    tell_error(err, "error", result.error)
            repeats.append(repeat.summarize(variant))
            if times > 1:
                _tell_repeat(args, out, repeats[-1])
                suites.append(junit.Suite.of_repeat(repeats[-1]))
    finally:
        if args.junit and suites:
            junit.write(Path(args.junit), suites)
    worst = merge(r.verdict for r in repeats)
    if args.json:
        document = {
            "verdict": worst.value,
            "exit_code": worst.exit_code,
            "runs": runs,
            "repeats": [r.to_json() for r in repeats],
        }
        out.print(json.dumps(document), markup=False, highlight=False, soft_wrap=True)
    elif times > 1 and len(repeats) > 1 and not args.quiet:
        out.print(catalogue_table([_repeat_row(r) for r in repeats], "how often"))
    elif len(targets(args)) > 1 and not args.quiet:
        out.print(matrix_table(journals))
    elif len(experiments) > 1 and not args.quiet:
        out.print(catalogue_table(rows))
    return worst.exit_code


def _repeat(args: argparse.Namespace) -> int:
    """--repeat K, checked here rather than by argparse: bad input exits 3, as a bad file does."""
    try:
        times = int(args.repeat)
    except ValueError:
        times = 0
    if times < 1:
        message = f"expected a whole number of runs, 1 or more; got {args.repeat!r}"
        raise SpecError("command line", None, "--repeat", message)
    return times


def _repeat_row(variant: repeat.RepeatSummary) -> tuple[str, Verdict, str]:
    """A variant's line in the table that ends a --repeat of several variants."""
    name = escape(f"{variant.experiment} on {variant.target}")
    return name, variant.verdict, f"held in {variant.held} of {variant.runs} runs"


def targets(args: argparse.Namespace) -> list[str]:
    """The names of --target a,b,c (repeatable), in order, once each."""
    names = [name.strip() for given in args.target or [] for name in given.split(",")]
    if args.target and not any(names):
        raise SpecError("--target", None, "", "no target named: give a name in targets/ or a file")
    return list(dict.fromkeys(name for name in names if name))


def override_sets(args: argparse.Namespace) -> list[list[str]]:
    """The overrides of each variant of an experiment: one, or one per --target."""
    named = targets(args)
    sets = with_placement(args, list(args.set))
    if not named:
        return [sets]
    return [[*sets, f"target={target}"] for target in named]


def variants(args: argparse.Namespace) -> list[tuple[Path, list[str]]]:
    """Each experiment file with each set of overrides."""
    return [(path, sets) for path in experiment_files(args.files) for sets in override_sets(args)]


def _progress(args: argparse.Namespace, err: Console) -> Progress:
    if args.quiet or args.json:
        return QuietProgress(err)
    return LiveProgress(err) if err.is_terminal else Progress(err)


def _tell(args: argparse.Namespace, out: Console, journal: Journal) -> None:
    """The end of one run: the full summary, one line (--quiet), or nothing yet (--json)."""
    if args.json:
        return
    if args.quiet:
        line = f"{journal.experiment}: {journal.verdict.value} ({shown(journal.folder)})"
        out.print(line, markup=False, soft_wrap=True)
        return
    summary(out, journal)


def _tell_repeat(args: argparse.Namespace, out: Console, variant: repeat.RepeatSummary) -> None:
    """The end of a variant's K runs: its table and repeat verdict, or one line (--quiet)."""
    if args.json:
        return
    if not args.quiet:
        out.print(repeat_table(variant))
    out.print(repeat_line(variant), soft_wrap=True)


# Where `harness run`, `up` and `dashboards push` look for a Grafana when no --grafana-url.
GRAFANA_URL_ENV = "HARNESS_GRAFANA_URL"


def grafana(args: argparse.Namespace) -> GrafanaApi | None:
    """The Grafana of --grafana-url or $HARNESS_GRAFANA_URL, connected; None without one."""
    url = args.grafana_url or os.environ.get(GRAFANA_URL_ENV)
    if not url:
        return None
    from harness.report import grafana  # grafana-client takes 0.15 s to import

    return grafana.connect(url)


def remote_load_workers(args: argparse.Namespace) -> RemoteWorkers | None:
    if args.remote_load_workers is None and args.load_master is None:
        return None
    if args.remote_load_workers is None or args.load_master is None:
        message = "--load-master HOST:PORT and --remote-load-workers N go together"
        raise SpecError("command line", None, "", message)
    try:
        return RemoteWorkers.parse(args.remote_load_workers, args.load_master)
    except ValueError as exc:
        raise SpecError("command line", None, "--load-master", str(exc)) from None


def with_placement(args: argparse.Namespace, sets: list[str]) -> list[str]:
    chosen = {"deployer": args.deployer, "observers": args.observers}
    return [*sets, *(f"{key}={value}" for key, value in chosen.items() if value)]


def remove_leftovers(console: Console) -> bool:
    """Remove what a harness killed outright left running, and say what it was."""
    from harness.deploy import leftovers  # with the Docker SDK: 0.1 s to import

    found = leftovers.find()
    leftovers.remove(found)  # also forgets the records of harnesses that no longer run
    for run_dir, faults in found.faults.items():
        console.print(
            f"[yellow]undid {count(len(faults), 'fault')} still in effect in {shown(run_dir)}, "
            "whose harness was killed:[/yellow]"
        )
        for fault in faults:
            console.print(f"  {fault}", soft_wrap=True, markup=False)
    if found.processes:
        removed = count(len(found.processes), "process", "processes")
        console.print(
            f"[yellow]removed {removed} left by a harness that was killed before it could tear "
            "down:[/yellow]"
        )
        for left in found.processes:
            console.print(f"  {left.pid}  {left.command}", soft_wrap=True, markup=False)
    for things, what, where in (
        (found.proxies, ("proxy", "proxies"), "on an existing Toxiproxy"),
        (found.containers, ("container or network", "containers and networks"), "in Docker"),
    ):
        if things:
            console.print(
                f"[yellow]removed {count(len(things), *what)} a harness that was killed left "
                f"{where}:[/yellow]"
            )
            for thing in things:
                console.print(f"  {thing}", soft_wrap=True, markup=False)
    return bool(found)


def tell_error(console: Console, label: str, error: BaseException) -> None:
    """One error on one line: its text as written (never markup) and without secrets."""
    console.print(f"[red]{label}:[/red] {escape(secrets.text(str(error)))}", soft_wrap=True)


def count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"
