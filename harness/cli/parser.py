"""Every command, flag and help text of the ``harness`` command line."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from typing import NoReturn

from harness import extras
from harness.cli.capacity import cmd_capacity
from harness.cli.commands import (
    cmd_dashboards_build,
    cmd_dashboards_check,
    cmd_dashboards_push,
    cmd_doctor,
    cmd_down,
    cmd_history,
    cmd_images,
    cmd_init,
    cmd_load_worker,
    cmd_probe,
    cmd_report,
    cmd_schema,
    cmd_setup,
    cmd_up,
    cmd_validate,
)
from harness.cli.run import GRAFANA_URL_ENV, cmd_run

EXIT_BAD_INPUT = 3


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


def parser() -> argparse.ArgumentParser:
    """The ``harness`` command line: every command, its flags and help."""
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
        "--control",
        action="store_true",
        help="run each experiment first with its faults skipped (same seed and load), then "
        "with them, and show every check's value without and with the faults; the exit code is "
        "that of the runs with faults",
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
    run.set_defaults(command=cmd_run)

    validate = commands.add_parser("validate", help="check experiment files without running them")
    validate.add_argument("files", nargs="+", metavar="FILE", help="experiment files or folders")
    validate.set_defaults(command=cmd_validate)

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
            "--matrix",
            action="append",
            default=[],
            metavar="KEY=V1,V2",
            help="run it once per value of this --set path (worker.replicas=1,2,4) or of target; "
            "several multiply, and replace the experiment's matrix: axis of the same key; ends "
            "with a table of every check on every combination",
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
    report.set_defaults(command=cmd_report)

    history = commands.add_parser(
        "history",
        help="write a finished run's ledger as a history of operations for Jepsen's checkers",
        description="Each send becomes an enqueue (invoke, then ok, fail or info) and each "
        "processing a dequeue (invoke, then ok), in time order, with times in nanoseconds from "
        "the first operation; docs/results.md describes the format.",
    )
    history.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, such as runs/<id>")
    history.add_argument(
        "--format",
        dest="form",
        choices=("jsonl", "edn"),
        default="jsonl",
        help="one JSON object per line, or one EDN map per line as Jepsen writes histories "
        "(default: jsonl)",
    )
    history.add_argument(
        "--out", metavar="FILE", help="where to write it (default: RUN_DIR/history.FORMAT)"
    )
    history.set_defaults(command=cmd_history)

    boards = commands.add_parser(
        "dashboards", help="write the Grafana dashboards, or push them to a Grafana"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    build = boards.add_parser("build", help="write the dashboards' JSON (for importing by hand)")
    build.add_argument("--out", default="dashboards", help="folder (default: dashboards)")
    build.set_defaults(command=cmd_dashboards_build)
    check = boards.add_parser(
        "check",
        help="check dashboards' JSON against Grafana's schema (exit 3 on any problem)",
        description="Each file is read against the models of grafana-foundation-sdk, generated "
        "from Grafana's schema: an unknown or mistyped field, a panel without a data source, a "
        "variable the dashboard does not define are each reported with their line.",
    )
    check.add_argument(
        "files", nargs="*", metavar="FILE", help="dashboard JSON files (default: dashboards/*.json)"
    )
    check.set_defaults(command=cmd_dashboards_check)
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
    push.set_defaults(command=cmd_dashboards_push)

    schema = commands.add_parser(
        "schema", help="print the JSON Schema of experiment or topology files, for editors"
    )
    schema.add_argument("kind", nargs="?", default="experiment", choices=("experiment", "topology"))
    schema.set_defaults(command=cmd_schema)

    worker = commands.add_parser(
        "load-worker",
        help="send load for a `harness run --remote-load-workers` elsewhere",
        description="Run one Locust worker of the master a `harness run` started with "
        "--load-master HOST:PORT. The run's settings come from the master; the sends go to the "
        "address the master gives, and their ledger lines back to the master. Use the same "
        "harness version on both sides.",
    )
    worker.add_argument("--master", required=True, metavar="HOST:PORT")
    worker.set_defaults(command=cmd_load_worker)

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
    stand.set_defaults(command=cmd_up)

    down = commands.add_parser(
        "down",
        help="stop what `harness up` left standing, and remove processes left by a harness "
        "that was killed (SIGKILL) mid-run",
    )
    down.set_defaults(command=cmd_down)

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
    init.set_defaults(command=cmd_init)

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
    probe.set_defaults(command=cmd_probe)

    capacity = commands.add_parser(
        "capacity",
        help="measure the highest rate a target sustains here, and how fast it catches up",
        description="Runs the target without faults at rising rates of open-model load "
        "(doubling from --start, then halving the gap to the first rate not sustained) and "
        "reports the highest sustained: the producer acknowledged 95 % of it, the backlog "
        "stayed under one second of messages, nothing was lost. Then a catch-up run: every "
        "consumer paused while a backlog builds at that rate, and the rate it is drained at "
        "once they return. Each sweep gives one of each; the medians are stored for this "
        "target on this machine, where an experiment's `rate: 40% capacity` reads them. Each "
        "step is a run with its own folder.",
    )
    capacity.add_argument("target", metavar="TARGET", help="a name in targets/ or a topology file")
    capacity.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a component of the target (worker.replicas=4) or its deployer; repeatable",
    )
    _placement_options(capacity)
    capacity.add_argument(
        "--sweeps", default="3", metavar="K", help="measure K times, for the spread (default: 3)"
    )
    capacity.add_argument(
        "--start", default="50/s", metavar="RATE", help="the first rate tried (default: 50/s)"
    )
    capacity.add_argument(
        "--rates",
        metavar="R1,R2,...",
        help="try these rates in order instead, stopping at the first not sustained",
    )
    capacity.add_argument(
        "--step",
        default="20s",
        metavar="DURATION",
        help="how long each rate is sent (default: 20s, at least 6s)",
    )
    capacity.add_argument(
        "--backlog",
        metavar="N",
        help="messages the catch-up run leaves waiting (default: 10 s of the "
        "sustained rate, at least 100)",
    )
    capacity.add_argument(
        "--consumer",
        default="worker",
        metavar="COMPONENT",
        help="the component paused in the catch-up run (default: worker)",
    )
    capacity.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    capacity.add_argument(
        "--json",
        action="store_true",
        help="print the measurement as one JSON document, and nothing while measuring",
    )
    capacity.set_defaults(command=cmd_capacity)

    doctor = commands.add_parser("doctor", help="list the real components and their versions")
    doctor.set_defaults(command=cmd_doctor)
    setup = commands.add_parser("setup", help="install the real components that are missing")
    setup.set_defaults(command=cmd_setup)
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
    images.set_defaults(command=cmd_images)
    return parser


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
