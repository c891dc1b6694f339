"""``harness run``: every file loaded before the first run starts, each run (and each repeat)
told as it ends, and the exit code of the worst verdict."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from harness import matrix, repeat, secrets, syntax
from harness.errors import HarnessError, Interrupted, SpecError
from harness.journal import Journal
from harness.load import RemoteWorkers
from harness.loader import experiment_files, load_experiment
from harness.matrix import Combination
from harness.report import junit
from harness.report.console import (
    LiveProgress,
    Progress,
    QuietProgress,
    catalogue_table,
    control_table,
    matrix_table,
    repeat_line,
    repeat_table,
    shown,
    styled_verdict,
    summary,
)
from harness.spec import Experiment
from harness.verdict import Verdict, merge
from harness.yamlsource import Override

if TYPE_CHECKING:
    from grafana_client.api import GrafanaApi

    from harness.runner import RunResult


@dataclass(frozen=True)
class Variant:
    """An experiment file with its overrides: the ``--set``s, then its combination's values."""

    path: Path
    sets: tuple[Override, ...]
    combination: Combination

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(o.text for o in self.sets)

    def name(self, experiment: str) -> str:
        """The variant's name in JUnit and in tables: the experiment's, with its combination."""
        label = self.combination.label
        return f"{experiment} [{label}]" if label else experiment


def cmd_run(args: argparse.Namespace, out: Console) -> int:
    from harness.runner import run  # the runner pulls in every step; validate need not

    # Every file is loaded before anything starts: bad input in the last one costs no run.
    times = _repeat(args)
    err = Console(stderr=True, highlight=False)
    loaded = [(load_experiment(v.path, v.sets, stand_in=True), v) for v in variants(args)]
    experiments = [(_measured(e, v, args, err), v) for e, v in loaded]
    if args.control:
        _with_faults(experiments)
    syntax.before_runs(experiment for experiment, _ in experiments)
    remote = remote_load_workers(args)
    grafana_api = grafana(args)
    remove_leftovers(err)
    suites: list[junit.Suite] = []
    rows: list[tuple[str, Verdict, str]] = []
    runs: list[dict[str, Any]] = []  # for --json
    cells: list[tuple[str, Journal]] = []  # for the table of a matrix
    repeats: list[tuple[Variant, repeat.RepeatSummary]] = []  # one per variant

    def attempt(
        experiment: Experiment, variant: Variant, seed: int | None, **how: Any
    ) -> RunResult | HarnessError:
        """One run, or the error that kept it from opening (a missing component)."""
        try:
            return run(
                experiment,
                runs_dir=Path(args.runs_dir),
                seed=seed,
                progress=_progress(args, err),
                overrides=variant.texts,
                remote_load_workers=remote,
                grafana_api=grafana_api,
                **how,
            )
        except Interrupted:
            raise
        except HarnessError as exc:
            return exc

    try:
        for experiment, variant in experiments:
            journals: list[Journal | repeat.Unopened] = []  # for its repeat summary
            for i, seed in enumerate(repeat.seeds(args.seed, times), 1):
                name = junit.run_name(variant.name(experiment.name), i, times)
                control: Journal | None = None
                if args.control:  # first, so that the faulted run can link it and take its seed
                    skipped = attempt(experiment, variant, seed, skip_faults=True)
                    if isinstance(skipped, HarnessError):
                        tell_error(err, "control run error", skipped)
                    else:
                        if isinstance(skipped.error, Interrupted):
                            raise skipped.error
                        control, seed = skipped.journal, skipped.journal.seed
                result = attempt(experiment, variant, seed, control=control)
                if isinstance(result, HarnessError):
                    tell_error(err, "error", result)
                    suites.append(junit.Suite(name, [], 0.0, str(result)))
                    rows.append((experiment.name, Verdict.INCONCLUSIVE, str(result)))
                    unopened = {"experiment": experiment.name, "verdict": "inconclusive"}
                    runs.append({**unopened, "error": str(result)})
                    journals.append(
                        repeat.Unopened(experiment.name, experiment.topology.name, seed)
                    )
                    continue
                _tell(args, out, result.journal, control)
                cells.append((variant.combination.label, result.journal))
                journals.append(result.journal)
                combination = variant.combination.to_json()
                runs.append(
                    result.journal.brief() | ({"matrix": combination} if combination else {})
                )
                suites.append(junit.Suite.of(result.journal, name))
                rows.append(
                    (
                        escape(variant.name(experiment.name)),
                        result.verdict,
                        str(shown(result.run_dir)),
                    )
                )
                if isinstance(result.error, Interrupted):
                    raise result.error
                if result.error is not None:
                    tell_error(err, "error", result.error)
            repeats.append((variant, repeat.summarize(journals)))
            if times > 1:
                _tell_repeat(args, out, repeats[-1][1])
                suites.append(junit.Suite.of_repeat(repeats[-1][1], variant.name(experiment.name)))
    finally:
        if args.junit and suites:
            junit.write(Path(args.junit), suites)
    worst = merge(r.verdict for _, r in repeats)
    if args.json:
        document = {
            "verdict": worst.value,
            "exit_code": worst.exit_code,
            "runs": runs,
            "repeats": [r.to_json() for _, r in repeats],
        }
        out.print(json.dumps(document), markup=False, highlight=False, soft_wrap=True)
    elif times > 1 and len(repeats) > 1 and not args.quiet:
        out.print(catalogue_table([_repeat_row(v, r) for v, r in repeats], "how often"))
    elif len({v.combination for _, v in experiments}) > 1 and not args.quiet:
        only_targets = all(v.combination.by_target for _, v in experiments)
        out.print(matrix_table(cells, "target" if only_targets else "combination"))
    elif len(experiments) > 1 and not args.quiet:
        out.print(catalogue_table(rows))
    return worst.exit_code


def _measured(
    experiment: Experiment, variant: Variant, args: argparse.Namespace, err: Console
) -> Experiment:
    """The experiment with its share of capacity measured, first if need be; every file was
    validated before this."""
    from harness.capacity.sweep import measured

    tell = teller(err, quiet=args.quiet or args.json)
    return measured(experiment, variant.sets, QuietProgress(err), tell)


def teller(console: Console, quiet: bool) -> Callable[[str], None]:
    """Where a measurement tells its runs: a line each, as written, or nowhere."""

    def tell(line: str) -> None:
        if not quiet:
            console.print(line, markup=False, soft_wrap=True)

    return tell


def _with_faults(experiments: Sequence[tuple[Experiment, Variant]]) -> None:
    """--control compares a run with its faults and without: an experiment needs faults."""
    for experiment, _ in experiments:
        if not experiment.faults:
            message = f"{experiment.name} has no faults to skip: --control needs a timeline"
            raise SpecError(str(experiment.file), None, "timeline", message)


def _repeat(args: argparse.Namespace) -> int:
    return whole_number(args.repeat, "--repeat", "runs")


def whole_number(text: str, flag: str, of: str = "") -> int:
    """A flag's count, checked here rather than by argparse: bad input exits 3, as a bad file
    does."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        what = f"a whole number of {of}" if of else "a whole number"
        raise SpecError("command line", None, flag, f"expected {what}, 1 or more; got {text!r}")
    return value


def _repeat_row(variant: Variant, repeated: repeat.RepeatSummary) -> tuple[str, Verdict, str]:
    """A variant's line in the table that ends a --repeat of several variants."""
    name = escape(variant.name(repeated.experiment) if variant.combination.overrides else
                  f"{repeated.experiment} on {repeated.target}")  # fmt: skip
    return name, repeated.verdict, f"held in {repeated.held} of {repeated.runs} runs"


def targets(args: argparse.Namespace) -> list[str]:
    """The names of --target a,b,c (repeatable), in order, once each."""
    names = [name.strip() for given in args.target or [] for name in given.split(",")]
    if args.target and not any(names):
        raise SpecError("--target", None, "", "no target named: give a name in targets/ or a file")
    return list(dict.fromkeys(name for name in names if name))


def given_axes(args: argparse.Namespace) -> list[matrix.Axis]:
    """The matrix of the command line: its --matrix axes and --target's."""
    return matrix.command_axes(args.matrix, targets(args))


def variants(args: argparse.Namespace, files: Sequence[str] | None = None) -> list[Variant]:
    """Each experiment file (of ``files``, else of the command line) with each combination of
    its matrix, after the --set overrides."""
    given = given_axes(args)
    sets = tuple(Override.parse(text) for text in with_placement(args, list(args.set)))
    found = []
    for path in experiment_files(args.files if files is None else files):
        axes = matrix.combine(matrix.file_axes(path), given)
        for combination in matrix.combinations(axes, str(path)):
            found.append(Variant(path, (*sets, *combination.overrides), combination))
    return found


def _progress(args: argparse.Namespace, err: Console) -> Progress:
    if args.quiet or args.json:
        return QuietProgress(err)
    return LiveProgress(err) if err.is_terminal else Progress(err)


def _tell(
    args: argparse.Namespace, out: Console, journal: Journal, control: Journal | None
) -> None:
    """The end of one run: the full summary (beside its control run's values), one line
    (--quiet), or nothing yet (--json)."""
    if args.json:
        return
    if args.quiet:
        for run, what in ((control, " (control)"), (journal, "")):
            if run is not None:
                line = f"{run.experiment}{what}: {run.verdict.value} ({shown(run.folder)})"
                out.print(line, markup=False, soft_wrap=True)
        return
    summary(out, journal)
    if control is not None:
        out.print(control_table(journal, control))
        out.print(f"control run (faults skipped): {styled_verdict(control.verdict)} "
                  f"({escape(str(shown(control.folder)))})", soft_wrap=True)  # fmt: skip


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
