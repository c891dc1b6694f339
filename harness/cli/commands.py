"""The commands other than ``harness run``: validate, schema, up and down, report, dashboards,
init, probe, doctor, setup, images and load-worker."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import components, extras, install, scaffold, secrets, syntax, up
from harness.errors import HarnessError, MissingComponent, SpecError
from harness.journal import read_journal
from harness.load import RemoteWorkers, worker_command
from harness.loader import load_experiment
from harness.report import charts, html
from harness.report.console import (
    Progress,
    shown,
    summary,
    verdict_table,
)
from harness.spec import Experiment, ExperimentSpec
from harness.store import RunFolder
from harness.topology import TopologySpec

if TYPE_CHECKING:
    from grafana_client.api import GrafanaApi


from harness.cli.run import (
    Variant,
    count,
    given_axes,
    grafana,
    remove_leftovers,
    tell_error,
    variants,
    with_placement,
)


def cmd_load_worker(args: argparse.Namespace, out: Console) -> int:
    """Become a Locust worker of a master elsewhere; Locust's exit code is this command's."""
    try:
        remote = RemoteWorkers.parse(1, args.master)
    except ValueError as exc:
        raise SpecError("command line", None, "--master", str(exc)) from None
    argv = worker_command(remote.host, remote.port)
    os.execv(argv[0], argv)  # signals reach Locust directly, as if it had been started by hand


def cmd_validate(args: argparse.Namespace, out: Console) -> int:
    with syntax.parser() as parse:
        return _validate_each(args, out, parse)


def _validate_each(
    args: argparse.Namespace, out: Console, parse: Callable[[Experiment], None] | None
) -> int:
    """Each file's verdict on one line; ``parse`` checks its PromQL, unless there is no
    Prometheus to ask (said once, as a warning: the rest of the file is still checked)."""
    worst = 0
    given_axes(args)  # a wrong --matrix or --target is the command line's, not a file's
    for name in args.files:
        try:
            found = variants(args, [name])
        except HarnessError as exc:
            worst = max(worst, _invalid(exc))
            continue
        for variant in found:
            path = variant.path
            try:
                experiment = load_experiment(path, variant.sets, stand_in=True)
                if parse is not None:
                    parse(experiment)
            except MissingComponent as exc:
                tell_error(Console(stderr=True, highlight=False), "PromQL not parsed", exc)
                parse = None
            except HarnessError as exc:
                worst = max(worst, _invalid(exc))
                continue
            faults = count(len(experiment.faults), "fault")
            checks = count(len(experiment.spec.checks), "check")
            out.print(
                f"[green]ok[/green] {path}: {experiment.name} on {experiment.topology.name}"
                f"{_combination(variant)}, {faults}, {checks}{_share(experiment)}",
                soft_wrap=True,
            )
    return worst


def _combination(variant: Variant) -> str:
    """What a variant's validation line adds to its target: the other values it was given."""
    combination = variant.combination
    if combination.by_target or not combination.overrides:
        return ""
    return " " + escape(f"[{combination.label}]")


def _share(experiment: Experiment) -> str:
    """What a rate given as a share of capacity comes to here, or that it is not measured."""
    share = experiment.capacity
    if share is None:
        return ""
    if share.measured is None:
        return (f"; load.rate {share.percent:g}% of a capacity not measured on this machine "
                "yet (`harness run` measures it first)")  # fmt: skip
    return f"; load.rate {share.percent:g}% of capacity: {experiment.spec.load.rate:g}/s"


def _invalid(exc: HarnessError) -> int:
    tell_error(Console(stderr=True, highlight=False), "invalid", exc)
    return exc.exit_code


def cmd_schema(args: argparse.Namespace, out: Console) -> int:
    model = TopologySpec if args.kind == "topology" else ExperimentSpec
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **model.model_json_schema(),
        "title": f"harness {args.kind} file",
    }
    sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    return 0


def cmd_down(args: argparse.Namespace, out: Console) -> int:
    for stand in up.stop_all():
        where = shown(Path(stand.run_dir))
        out.print(f"stopped the standing {stand.target} ({where})", soft_wrap=True, markup=False)
    if not remove_leftovers(out):
        out.print("nothing left behind: no process of a killed harness run is running")
    return 0


def cmd_up(args: argparse.Namespace, out: Console) -> int:
    # No load stands: a rate given as a share of capacity needs no measurement here.
    sets = with_placement(args, args.set)
    experiment = load_experiment(Path(args.file), sets, stand_in=True)
    grafana_api = grafana(args)
    if args.foreground:
        from harness.runner import stand  # the runner pulls in every step
        from harness.stack import Standing

        def ready(standing: Standing, run_dir: Path) -> None:
            _tell_stand(out, up.record(standing, experiment, run_dir), grafana_api)

        stand(experiment, Path(args.runs_dir), args.prometheus_port, ready, Progress(out))
        return 0
    argv = ["up", args.file, "--foreground", "--runs-dir", args.runs_dir]
    argv += ["--prometheus-port", str(args.prometheus_port)]
    for override in with_placement(args, args.set):
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


def cmd_report(args: argparse.Namespace, out: Console) -> int:
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
        writable_file(Path(args.svg), "--svg")
        Path(args.svg).write_text(console.export_svg(title=f"harness run: {journal.run_id}"))
        out.print(f"wrote {args.svg}", markup=False)
    out.print(f"wrote {shown(page)}", markup=False)
    return journal.verdict.exit_code


def cmd_history(args: argparse.Namespace, out: Console) -> int:
    from harness.ledger import history  # DuckDB: only the commands that read a ledger load it
    from harness.ledger.files import LedgerUnreadable

    folder = RunFolder(Path(args.run_dir))
    if not folder.sent.parent.is_dir():
        why = "no ledger folder here: give a run folder, such as runs/<id>"
        raise SpecError(str(folder.path), None, "", why)
    target = Path(args.out) if args.out else folder.path / f"history.{args.form}"
    writable_file(target, "--out")
    try:
        count = history.write(folder.sent, folder.processed, target, args.form)
    except LedgerUnreadable as exc:
        why = f"the ledger cannot be read: {exc}"
        raise SpecError(str(folder.sent.parent), None, "", why) from None
    out.print(f"wrote {shown(target)}: {count} operations", markup=False, soft_wrap=True)
    return 0


def writable_file(path: Path, option: str) -> None:
    if path.is_dir():
        raise SpecError(option, None, "", f"{path} is a folder; give a file to write")


def _folder(path: Path, option: str) -> Path:
    """A folder to write into: one that exists, or none yet; never a file."""
    if path.exists() and not path.is_dir():
        raise SpecError(option, None, "", f"{path} is a file, not a folder")
    return path


def cmd_dashboards_build(args: argparse.Namespace, out: Console) -> int:
    from harness.report import dashboards  # Grafana's models take 0.1 s to import

    for path in dashboards.build(_folder(Path(args.out), "--out")):
        out.print(f"wrote {shown(path)}", markup=False)
    return 0


def cmd_dashboards_check(args: argparse.Namespace, out: Console) -> int:
    """Each file against Grafana's schema: ``ok`` on one line, or every problem on its own."""
    from harness.report import dashboard_schema  # Grafana's models take 0.1 s to import

    worst = 0
    for path in [Path(name) for name in args.files] or sorted(Path("dashboards").glob("*.json")):
        found: list[HarnessError]
        try:
            found = list(dashboard_schema.check_file(path))
        except HarnessError as exc:
            found = [exc]
        for problem in found:
            worst = max(worst, _invalid(problem))
        if not found:
            out.print(f"[green]ok[/green] {path}", soft_wrap=True)
    return worst


def cmd_dashboards_push(args: argparse.Namespace, out: Console) -> int:
    from harness.report import dashboards, grafana

    titles = grafana.push(grafana.connect(args.grafana_url), args.prometheus_url)
    url = secrets.url(args.grafana_url)  # as shown: a password in it is not printed
    out.print(
        f"{url}: data source {dashboards.DATASOURCE_UID} -> {args.prometheus_url}", markup=False
    )
    for title in titles:
        out.print(f"{url}: dashboard {title!r} created or updated", markup=False)
    return 0


def cmd_init(args: argparse.Namespace, out: Console) -> int:
    for path in scaffold.write(args.name, _folder(Path(args.dir), "--dir"), args.force):
        out.print(f"wrote {path}", markup=False)
    experiment = Path(args.dir) / "experiments" / f"{args.name}-crashed-workers.yaml"
    out.print(
        f"next: edit the TODO lines, then `harness validate {experiment}`, "
        f"then `harness run {experiment}`"
    )
    return 0


def cmd_probe(args: argparse.Namespace, out: Console) -> int:
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


def cmd_doctor(args: argparse.Namespace, out: Console) -> int:
    statuses = components.doctor()
    out.print(_status_table(statuses))
    return 0 if all(s.found for s in statuses) else 2


def cmd_setup(args: argparse.Namespace, out: Console) -> int:
    statuses = install.setup(
        lambda line: out.print(line, style="dim", markup=False, soft_wrap=True)
    )
    out.print(_status_table(statuses))
    return 0


def cmd_images(args: argparse.Namespace, out: Console) -> int:
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
