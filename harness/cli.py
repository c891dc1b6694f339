"""The command line: parse arguments, call the library, map the result to an exit code.

Exit codes: 0 held, 1 a check failed, 2 inconclusive or the environment is not ready (also an
aborted run), 3 bad input, 4 flaky (with --repeat, the runs disagreed), 128+N interrupted by
signal N. No command prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import components, extras, repeat, scaffold, secrets, up
from harness.errors import HarnessError, Interrupted, MissingComponent, SpecError
from harness.journal import Journal, read_journal
from harness.load import RemoteWorkers, worker_command
from harness.loader import experiment_files, load_experiment
from harness.observe import syntax
from harness.report import charts, dashboards, html, junit
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
    verdict_table,
)
from harness.report.dashboards import GRAFANA_URL_ENV
from harness.spec import Experiment, ExperimentSpec, TopologySpec
from harness.store import RunFolder
from harness.verdict import Verdict, merge

if TYPE_CHECKING:
    from grafana_client.api import GrafanaApi

EXIT_BAD_INPUT = 3


# What --json says of each run: the journal's judgement, not its whole history.
def _terminated(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM outside a run (loading, between experiments) ends as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _terminated)
    parser = _parser()
    args = parser.parse_args(argv)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        code: int = args.command(args, out)
    except HarnessError as exc:
        _tell_error(err, "error", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


def _run(args: argparse.Namespace, out: Console) -> int:
    from harness.runner import run  # the runner pulls in every step; validate need not

    # Every file is loaded before anything starts: bad input in the last one costs no run.
    times = _repeat(args)
    experiments = [(load_experiment(path, sets), sets) for path, sets in _variants(args)]
    syntax.before_runs(experiment for experiment, _ in experiments)
    remote = _remote_load_workers(args)
    grafana_api = _grafana(args)
    err = Console(stderr=True, highlight=False)
    _remove_leftovers(err)
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
                    _tell_error(err, "error", exc)
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
                    _tell_error(err, "error", result.error)
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
    elif len(_targets(args)) > 1 and not args.quiet:
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


def _targets(args: argparse.Namespace) -> list[str]:
    """The names of --target a,b,c (repeatable), in order, once each."""
    names = [name.strip() for given in args.target or [] for name in given.split(",")]
    if args.target and not any(names):
        raise SpecError("--target", None, "", "no target named: give a name in targets/ or a file")
    return list(dict.fromkeys(name for name in names if name))


def _override_sets(args: argparse.Namespace) -> list[list[str]]:
    """The overrides of each variant of an experiment: one, or one per --target."""
    targets = _targets(args)
    sets = _with_placement(args, list(args.set))
    if not targets:
        return [sets]
    return [[*sets, f"target={target}"] for target in targets]


def _variants(args: argparse.Namespace) -> list[tuple[Path, list[str]]]:
    """Each experiment file with each set of overrides."""
    return [(path, sets) for path in experiment_files(args.files) for sets in _override_sets(args)]


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


def _grafana(args: argparse.Namespace) -> GrafanaApi | None:
    """The Grafana of --grafana-url or $HARNESS_GRAFANA_URL, connected; None without one."""
    url = args.grafana_url or os.environ.get(GRAFANA_URL_ENV)
    if not url:
        return None
    from harness.report import grafana  # grafana-client takes 0.15 s to import

    return grafana.connect(url)


def _remote_load_workers(args: argparse.Namespace) -> RemoteWorkers | None:
    if args.remote_load_workers is None and args.load_master is None:
        return None
    if args.remote_load_workers is None or args.load_master is None:
        message = "--load-master HOST:PORT and --remote-load-workers N go together"
        raise SpecError("command line", None, "", message)
    try:
        return RemoteWorkers.parse(args.remote_load_workers, args.load_master)
    except ValueError as exc:
        raise SpecError("command line", None, "--load-master", str(exc)) from None


def _load_worker(args: argparse.Namespace, out: Console) -> int:
    """Become a Locust worker of a master elsewhere; Locust's exit code is this command's."""
    try:
        remote = RemoteWorkers.parse(1, args.master)
    except ValueError as exc:
        raise SpecError("command line", None, "--master", str(exc)) from None
    argv = worker_command(remote.host, remote.port)
    os.execv(argv[0], argv)  # signals reach Locust directly, as if it had been started by hand


def _validate(args: argparse.Namespace, out: Console) -> int:
    with syntax.parser() as parse:
        return _validate_each(args, out, parse)


def _validate_each(
    args: argparse.Namespace, out: Console, parse: Callable[[Experiment], None] | None
) -> int:
    """Each file's verdict on one line; ``parse`` checks its PromQL, unless there is no
    Prometheus to ask (said once, as a warning: the rest of the file is still checked)."""
    worst = 0
    for name in args.files:
        try:
            paths = experiment_files([name])
        except HarnessError as exc:
            worst = max(worst, _invalid(exc))
            continue
        for path, sets in ((path, sets) for path in paths for sets in _override_sets(args)):
            try:
                experiment = load_experiment(path, sets)
                if parse is not None:
                    parse(experiment)
            except MissingComponent as exc:
                _tell_error(Console(stderr=True, highlight=False), "PromQL not parsed", exc)
                parse = None
            except HarnessError as exc:
                worst = max(worst, _invalid(exc))
                continue
            faults = _count(len(experiment.faults), "fault")
            checks = _count(len(experiment.spec.checks), "check")
            out.print(
                f"[green]ok[/green] {path}: {experiment.name} on {experiment.topology.name}, "
                f"{faults}, {checks}",
                soft_wrap=True,
            )
    return worst


def _invalid(exc: HarnessError) -> int:
    _tell_error(Console(stderr=True, highlight=False), "invalid", exc)
    return exc.exit_code


def _tell_error(console: Console, label: str, error: BaseException) -> None:
    """One error on one line: its text as written (never markup) and without secrets."""
    console.print(f"[red]{label}:[/red] {escape(secrets.text(str(error)))}", soft_wrap=True)


def _schema(args: argparse.Namespace, out: Console) -> int:
    model = TopologySpec if args.kind == "topology" else ExperimentSpec
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **model.model_json_schema(),
        "title": f"harness {args.kind} file",
    }
    sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    return 0


def _down(args: argparse.Namespace, out: Console) -> int:
    for stand in up.stop_all():
        where = shown(Path(stand.run_dir))
        out.print(f"stopped the standing {stand.target} ({where})", soft_wrap=True, markup=False)
    if not _remove_leftovers(out):
        out.print("nothing left behind: no process of a killed harness run is running")
    return 0


def _up(args: argparse.Namespace, out: Console) -> int:
    experiment = load_experiment(Path(args.file), _with_placement(args, args.set))
    grafana_api = _grafana(args)
    if args.foreground:
        from harness.runner import stand  # the runner pulls in every step
        from harness.stack import Standing

        def ready(standing: Standing, run_dir: Path) -> None:
            _tell_stand(out, up.record(standing, experiment, run_dir), grafana_api)

        stand(experiment, Path(args.runs_dir), args.prometheus_port, ready, Progress(out))
        return 0
    argv = ["up", args.file, "--foreground", "--runs-dir", args.runs_dir]
    argv += ["--prometheus-port", str(args.prometheus_port)]
    for override in _with_placement(args, args.set):
        argv += ["--set", override]
    log = components.home() / "standing" / f"up-{os.getpid()}.log"
    standing = up.start_detached(argv, log)
    try:
        _tell_stand(out, standing, grafana_api)
    except HarnessError:
        up.stop(standing)  # a half-provisioned stand is not left behind
        raise
    out.print("`harness down` stops it all")
    return 0


def _tell_stand(out: Console, stand: up.Stand, grafana_api: GrafanaApi | None) -> None:
    where = shown(Path(stand.run_dir))
    out.print(
        f"{stand.target} stands, pid {stand.pid}, run folder {where}", soft_wrap=True, markup=False
    )
    for name, url in stand.urls.items():
        out.print(f"  {name}: {url}", soft_wrap=True, markup=False)
    if grafana_api is not None:
        from harness.report import grafana

        for title in grafana.push(grafana_api, stand.urls["prometheus"]):
            shown_url = secrets.url(str(grafana_api.url))
            out.print(f"  grafana: dashboard {title!r} at {shown_url}", markup=False)


def _remove_leftovers(console: Console) -> bool:
    """Remove what a harness killed outright left running, and say what it was."""
    from harness.deploy import leftovers  # with the Docker SDK: 0.1 s to import

    found = leftovers.find()
    leftovers.remove(found)  # also forgets the records of harnesses that no longer run
    for run_dir, faults in found.faults.items():
        console.print(
            f"[yellow]undid {_count(len(faults), 'fault')} still in effect in {shown(run_dir)}, "
            "whose harness was killed:[/yellow]"
        )
        for fault in faults:
            console.print(f"  {fault}", soft_wrap=True, markup=False)
    if found.processes:
        removed = _count(len(found.processes), "process", "processes")
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
                f"[yellow]removed {_count(len(things), *what)} a harness that was killed left "
                f"{where}:[/yellow]"
            )
            for thing in things:
                console.print(f"  {thing}", soft_wrap=True, markup=False)
    return bool(found)


def _report(args: argparse.Namespace, out: Console) -> int:
    run_dir = Path(args.run_dir)
    if args.rejudge:
        return _rejudge(run_dir, out)
    journal = read_journal(run_dir)
    console = Console(record=True, width=110, highlight=False) if args.svg else out
    try:
        summary(console, journal)
        page = html.write(run_dir, journal, charts.load(run_dir))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a journal edited by hand
        why = f"not a journal this harness can read back: {exc!r}"
        raise SpecError(str(RunFolder(run_dir).journal), None, "", why) from None
    if args.svg:
        _writable_file(Path(args.svg), "--svg")
        Path(args.svg).write_text(console.export_svg(title=f"harness run: {journal.run_id}"))
        out.print(f"wrote {args.svg}", markup=False)
    out.print(f"wrote {shown(page)}", markup=False)
    return journal.verdict.exit_code


def _writable_file(path: Path, option: str) -> None:
    if path.is_dir():
        raise SpecError(option, None, "", f"{path} is a folder; give a file to write")


def _folder(path: Path, option: str) -> Path:
    """A folder to write into: one that exists, or none yet; never a file."""
    if path.exists() and not path.is_dir():
        raise SpecError(option, None, "", f"{path} is a file, not a folder")
    return path


def _dashboards_build(args: argparse.Namespace, out: Console) -> int:
    for path in dashboards.build(_folder(Path(args.out), "--out")):
        out.print(f"wrote {shown(path)}", markup=False)
    return 0


def _dashboards_push(args: argparse.Namespace, out: Console) -> int:
    from harness.report import grafana

    titles = grafana.push(grafana.connect(args.grafana_url), args.prometheus_url)
    url = secrets.url(args.grafana_url)  # as shown: a password in it is not printed
    out.print(
        f"{url}: data source {dashboards.DATASOURCE_UID} -> {args.prometheus_url}", markup=False
    )
    for title in titles:
        out.print(f"{url}: dashboard {title!r} created or updated", markup=False)
    return 0


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def _init(args: argparse.Namespace, out: Console) -> int:
    for path in scaffold.write(args.name, _folder(Path(args.dir), "--dir"), args.force):
        out.print(f"wrote {path}", markup=False)
    experiment = Path(args.dir) / "experiments" / f"{args.name}-crashed-workers.yaml"
    out.print(
        f"next: edit the TODO lines, then `harness validate {experiment}`, "
        f"then `harness run {experiment}`"
    )
    return 0


def _probe(args: argparse.Namespace, out: Console) -> int:
    try:
        from harness.observe import queue_probe  # the broker clients: the targets extra
    except ModuleNotFoundError as exc:
        raise extras.missing(exc, "harness probe") from None
    try:
        source = queue_probe.collector(args.broker, args.url, args.queue, args.unacked)
    except ValueError as exc:
        raise SpecError("harness probe", None, "", str(exc)) from None
    queue_probe.serve(source, args.port)
    return 0


def _rejudge(run_dir: Path, out: Console) -> int:
    from harness.rejudge import rejudge

    journal, checks, verdict = rejudge(run_dir)
    out.print(verdict_table(checks))
    stored = {c.name: c for c in journal.checks}
    changed = [
        (now, then)
        for now in checks
        if (then := stored.get(now.name)) is None
        or (then.verdict, then.observed) != (now.verdict, now.observed)
    ]
    for now, then in changed:
        was = "not judged" if then is None else f"{then.verdict.value} ({then.observed})"
        line = f"changed: {now.name}: {was} -> {now.verdict.value} ({now.observed})"
        out.print(line, markup=False)
    if not changed:
        out.print("rejudged: every check as the run judged it", markup=False)
    out.print(f"verdict: {verdict.value} (the run's: {journal.verdict.value})", markup=False)
    return verdict.exit_code


def _doctor(args: argparse.Namespace, out: Console) -> int:
    statuses = components.doctor()
    out.print(_status_table(statuses))
    return 0 if all(s.found for s in statuses) else 2


def _setup(args: argparse.Namespace, out: Console) -> int:
    statuses = components.setup(
        lambda line: out.print(line, style="dim", markup=False, soft_wrap=True)
    )
    out.print(_status_table(statuses))
    return 0


def _images(args: argparse.Namespace, out: Console) -> int:
    from harness.deploy import images  # the Docker SDK is only needed here

    def say(line: str) -> None:
        out.print(line, style="dim", markup=False, soft_wrap=True)

    client = images.connect()
    try:
        for kind in dict.fromkeys(args.kind or images.KINDS):
            image = images.provide(client, kind, say)
            how = f"{image.how} in {image.seconds:.1f} s" if image.how != "found" else "found"
            out.print(f"{kind:<10} {image.tag:<32} {how}", markup=False, soft_wrap=True)
    finally:
        client.close()
    return 0


def _status_table(statuses: Sequence[components.Status]) -> Table:
    table = Table(header_style="bold")
    for column in ("component", "found", "version", "path or how to install"):
        table.add_column(column)
    for s in statuses:
        found = "[green]yes[/green]" if s.found else "[red]no[/red]"
        table.add_row(s.name, found, s.version or "", str(s.path) if s.path else s.install_hint)
    return table


def _placement_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--deployer",
        choices=("local", "docker"),
        help="start the target as local processes or as Docker containers, whatever its file "
        "says (the same as --set deployer=...)",
    )
    command.add_argument(
        "--observers",
        choices=("host", "docker"),
        help="run the run's Prometheus here or as a container on the run's network (docker "
        "needs --deployer docker; the same as --set observers=...)",
    )


def _with_placement(args: argparse.Namespace, sets: list[str]) -> list[str]:
    chosen = {"deployer": args.deployer, "observers": args.observers}
    return [*sets, *(f"{key}={value}" for key, value in chosen.items() if value)]


class _Parser(argparse.ArgumentParser):
    """A command line that is wrong is bad input like a wrong file: exit 3, not argparse's 2,
    which the harness gives to inconclusive verdicts."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _version() -> str:
    """The installed distribution's version (``chaos-harness``), or a note that it is not
    installed (run from a checkout's folder)."""
    try:
        return importlib.metadata.version(extras.DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description="Chaos experiments for asynchronous systems: deploy a target, drive load, "
        "inject faults, check metrics and the message ledger, and exit with a verdict.",
        epilog="exit codes: 0 held, 1 failed, 2 inconclusive/aborted/environment, 3 bad input, "
        "4 flaky (--repeat)",
    )
    parser.add_argument(
        "--version", action="version", version=f"harness {_version()}", help="print the version"
    )
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run experiments and exit with the worst verdict",
        description="Run each experiment in turn; a folder stands for its *.yaml files. Every "
        "file is validated before the first run starts. The exit code is the worst verdict.",
    )
    run.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="experiment files or folders, such as experiments/slow-consumer.yaml or experiments/",
    )
    run.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    run.add_argument(
        "--seed",
        type=int,
        help="seed for every random choice (default: random); with --repeat K the runs use "
        "SEED, SEED+1, ..., SEED+K-1",
    )
    run.add_argument(
        "--repeat",
        default="1",
        metavar="K",
        help="run each experiment (on each target) K times in a row and judge the runs "
        "together: a check that held in some and failed in others is flaky, exit 4 (default: 1)",
    )
    run.add_argument(
        "--junit", metavar="PATH", help="also write one JUnit XML file for all the experiments"
    )
    run.add_argument(
        "--remote-load-workers",
        type=int,
        metavar="N",
        help="also wait for N Locust workers started elsewhere with `harness load-worker`",
    )
    run.add_argument(
        "--load-master",
        metavar="HOST:PORT",
        help="where the Locust master listens for remote workers (with --remote-load-workers)",
    )
    run.add_argument(
        "--grafana-url",
        metavar="URL",
        help=f"annotate this Grafana with the run's faults and phases (or set {GRAFANA_URL_ENV}; "
        "credentials from GRAFANA_TOKEN, or GRAFANA_USER and GRAFANA_PASSWORD)",
    )
    chatter = run.add_mutually_exclusive_group()
    chatter.add_argument(
        "--quiet", action="store_true", help="print one line per experiment: its verdict"
    )
    chatter.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document at the end (verdict, exit code, each run's checks, "
        "ledger and folder, and each experiment's repeats) and nothing while running",
    )
    run.set_defaults(command=_run)

    validate = commands.add_parser("validate", help="check experiment files without running them")
    validate.add_argument("files", nargs="+", metavar="FILE", help="experiment files or folders")
    validate.set_defaults(command=_validate)

    for sub in (run, validate):
        sub.add_argument(
            "--target",
            action="append",
            metavar="NAME[,NAME...]",
            help="run on this target instead of the experiment's (a name in targets/ or a "
            "topology file); several, comma-separated or repeated, run it on each in turn and "
            "end with a table of every check's observed value on every target",
        )
        sub.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="PATH=VALUE",
            help="override a field of the experiment (load.rate=100/s), of a target "
            "component (worker.replicas=1, worker.env.PROCESS_MS=50) or the target's deployer "
            "(deployer=docker); repeatable",
        )
    for sub in (run, validate):
        _placement_options(sub)

    report = commands.add_parser(
        "report",
        help="print a finished run's verdict table again and rewrite its report.html",
        description="Print the verdict table from the run's journal.json and write "
        "RUN_DIR/report.html again from the journal and the series the run saved (series.json).",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, such as runs/<id>")
    report.add_argument("--svg", metavar="FILE", help="also save the table as an SVG picture")
    report.add_argument(
        "--rejudge",
        action="store_true",
        help="judge the run's checks again from its own Prometheus data and ledger files "
        "(a Prometheus is started on RUN_DIR/prometheus), say what differs from the run's "
        "own judgement, and exit with the verdict they give now; nothing else is rewritten",
    )
    report.set_defaults(command=_report)

    boards = commands.add_parser(
        "dashboards", help="write the Grafana dashboards, or push them to a Grafana"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    build = boards.add_parser("build", help="write the dashboards' JSON (for importing by hand)")
    build.add_argument("--out", default="dashboards", help="folder (default: dashboards)")
    build.set_defaults(command=_dashboards_build)
    push = boards.add_parser(
        "push",
        help="create or update the Prometheus data source and the dashboards in a Grafana",
        description="Credentials come from the environment: GRAFANA_TOKEN (a service account "
        "token), or GRAFANA_USER and GRAFANA_PASSWORD.",
    )
    push.add_argument(
        "--grafana-url",
        metavar="URL",
        default=os.environ.get(GRAFANA_URL_ENV),
        required=GRAFANA_URL_ENV not in os.environ,
        help=f"the Grafana (default: ${GRAFANA_URL_ENV})",
    )
    push.add_argument(
        "--prometheus-url",
        default="http://127.0.0.1:9090",
        metavar="URL",
        help="the Prometheus the data source reads, as Grafana reaches it "
        "(default: http://127.0.0.1:9090)",
    )
    push.set_defaults(command=_dashboards_push)

    schema = commands.add_parser(
        "schema", help="print the JSON Schema of experiment or topology files, for editors"
    )
    schema.add_argument("kind", nargs="?", default="experiment", choices=("experiment", "topology"))
    schema.set_defaults(command=_schema)

    worker = commands.add_parser(
        "load-worker",
        help="send load for a `harness run --remote-load-workers` elsewhere",
        description="Run one Locust worker of the master a `harness run` started with "
        "--load-master HOST:PORT. The run's settings come from the master; the sends go to the "
        "address the master gives, and their ledger lines back to the master. Use the same "
        "harness version on both sides.",
    )
    worker.add_argument("--master", required=True, metavar="HOST:PORT")
    worker.set_defaults(command=_load_worker)

    stand = commands.add_parser(
        "up",
        help="deploy an experiment's target, its links and a Prometheus, and leave them running",
        description="Deploy the target of FILE (with --set overrides), a Toxiproxy proxy per "
        "link and a Prometheus scraping everything, print their URLs, and leave them running "
        "for the dashboards and for exploring by hand: no load, no fault. `harness down` stops "
        "them.",
    )
    stand.add_argument("file", metavar="FILE", help="an experiment file; its target stands")
    stand.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    _placement_options(stand)
    stand.add_argument("--runs-dir", default="runs", help="where its folder goes (default: runs)")
    stand.add_argument(
        "--prometheus-port", type=int, default=9090, help="Prometheus' port (default: 9090)"
    )
    stand.add_argument(
        "--grafana-url",
        metavar="URL",
        help=f"push the dashboards there, reading this Prometheus (or set {GRAFANA_URL_ENV})",
    )
    stand.add_argument(
        "--foreground", action="store_true", help="stay in this terminal until Ctrl-C instead"
    )
    stand.set_defaults(command=_up)

    down = commands.add_parser(
        "down",
        help="stop what `harness up` left standing, and remove processes left by a harness "
        "that was killed (SIGKILL) mid-run",
    )
    down.set_defaults(command=_down)

    init = commands.add_parser(
        "init",
        help="write a commented starting target and experiment for your own system",
        description="Write targets/NAME.yaml (your system as the harness deploys it: an API, "
        "a broker, workers, a broker probe and where the workers record their effects, with "
        "the lines to change marked TODO) and experiments/NAME-crashed-workers.yaml (every "
        "worker killed mid-job, twice) under DIR. Nothing is overwritten without --force.",
    )
    init.add_argument("name", metavar="NAME", help="the target's name")
    init.add_argument("--dir", default=".", help="where targets/ and experiments/ go (default: .)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.set_defaults(command=_init)

    probe = commands.add_parser(
        "probe",
        help="export the backlog of a broker the harness did not deploy, for Prometheus",
        description="A broker probe to run as a component of your own topology: on each "
        "scrape of /metrics it reads the broker and exports harness_queue_depth, "
        "harness_queue_inflight and harness_probe_broker_up, which the checks and the drain "
        "read. `redis`: queues kept as Redis lists (Celery, RQ), with the messages delivered "
        "and not acknowledged in one key (Celery's `unacked` hash). `kafka`: the lag of a "
        "consumer group on a topic, the records past its committed offsets.",
    )
    probe.add_argument("broker", choices=("redis", "kafka"))
    probe.add_argument("--url", required=True, help="redis://host:port/db, or Kafka's host:port")
    probe.add_argument(
        "--queue",
        action="append",
        required=True,
        help="a Redis list, or a Kafka TOPIC:GROUP, to measure (repeat for more)",
    )
    probe.add_argument(
        "--unacked",
        help="the key of the messages delivered and not acknowledged (a hash, list or sorted "
        "set), or a pattern with * whose keys are summed (one list per worker)",
    )
    probe.add_argument("--port", type=int, required=True, help="where to serve /metrics")
    probe.set_defaults(command=_probe)

    doctor = commands.add_parser("doctor", help="list the real components and their versions")
    doctor.set_defaults(command=_doctor)
    setup = commands.add_parser("setup", help="install the real components that are missing")
    setup.set_defaults(command=_setup)
    images = commands.add_parser(
        "images",
        help="build the images the docker deployer runs, unless built already",
        description="Make each image kind (default: all) from a Debian base debootstrapped on "
        "this machine, unless an image with the same recipe is there; print its tag and "
        "whether it was built or found. Needs a running Docker engine (exit 2 without one).",
    )
    images.add_argument(
        "--kind",
        action="append",
        # images.KINDS, written out: importing it would import the Docker SDK on every command
        choices=("base", "redis", "python", "toxiproxy", "rabbitmq", "nats", "kafka", "prometheus"),
        help="an image kind to make (repeatable; default: all)",
    )
    images.set_defaults(command=_images)
    return parser


if __name__ == "__main__":
    sys.exit(main())
