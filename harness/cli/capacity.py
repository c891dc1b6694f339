"""``harness capacity``: a target's highest sustained rate and catch-up rate on this machine,
printed with their spread and stored for experiments whose rate is a share of it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from harness.capacity import store
from harness.capacity.share import Subject
from harness.capacity.sweep import Measuring, Settings, median_and_range
from harness.cli.run import teller, whole_number, with_placement
from harness.errors import SpecError
from harness.loader import PLACEMENT, field_names, find_target
from harness.report.console import QuietProgress, shown
from harness.spec import ExperimentSpec
from harness.units import parse_duration, parse_rate
from harness.yamlsource import Override


def cmd_capacity(args: argparse.Namespace, out: Console) -> int:
    err = Console(stderr=True, highlight=False)
    subject = Subject(_target(args.target), sets=tuple(_sets(args)))
    settings = Settings(
        sweeps=whole_number(args.sweeps, "--sweeps"),
        start=_rate(args.start, "--start"),
        rates=tuple(_rate(r, "--rates") for r in args.rates.split(",")) if args.rates else (),
        step_s=_duration(args.step, "--step"),
        backlog=whole_number(args.backlog, "--backlog") if args.backlog is not None else None,
        consumer=args.consumer,
        runs_dir=Path(args.runs_dir),
    )

    tell = teller(err, quiet=args.json)
    measuring = Measuring(subject, settings, QuietProgress(err), tell)
    measurement = measuring.measure()
    path = store.keep(measurement)
    if args.json:
        document = measurement.to_json() | {"file": str(path)}
        out.print(json.dumps(document), markup=False, highlight=False, soft_wrap=True)
        return 0
    sweeps = f"{len(measurement.rates_per_s)} sweep" + ("s" if settings.sweeps > 1 else "")
    out.print(
        f"capacity of {escape(measurement.target)} on {escape(measurement.host)} "
        f"({measurement.cores} cores): [bold]{median_and_range(measurement.rates_per_s)}"
        f"[/bold], {sweeps} of {settings.step_s:g} s steps",
        soft_wrap=True,
    )
    out.print(
        f"catch-up: [bold]{median_and_range(measurement.catch_ups_per_s)}[/bold], draining "
        f"a backlog of {measurement.backlog:,} messages",
        soft_wrap=True,
    )
    days = store.MAX_AGE_S / 86400
    out.print(
        f"stored: {escape(str(shown(path)))} (what `rate: N% capacity` reads for {days:g} days)",
        soft_wrap=True,
    )
    return 0


def _target(name: str) -> Path:
    found = find_target(name, Path.cwd())
    if found is None:
        raise SpecError("command line", None, "TARGET", f"no target {name!r}: give a name in "
                        "targets/ or a topology file")  # fmt: skip
    return found


def _sets(args: argparse.Namespace) -> list[str]:
    """--set, --deployer and --observers: each changes the target, not the load."""
    sets = with_placement(args, list(args.set))
    fields = field_names(ExperimentSpec) - set(PLACEMENT)  # the load is the measurement's own
    for text in sets:
        first = Override.parse(text).path[0]
        if first in fields:
            message = (f"{first} is the measurement's own; --set changes the target's "
                       "components, its deployer or observers")  # fmt: skip
            raise SpecError("command line", None, f"--set {text}", message)
    return sets


def _rate(text: str, flag: str) -> float:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise SpecError("command line", None, flag, str(exc)) from None


def _duration(text: str, flag: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise SpecError("command line", None, flag, str(exc)) from None
    if seconds < 6:
        raise SpecError("command line", None, flag, f"a step is at least 6s, got {text!r}")
    return seconds
