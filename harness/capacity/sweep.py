"""Measuring a target's capacity with ordinary runs: rising rates until one is not sustained,
then halving the gap; and a catch-up run, whose consumers come back to a backlog.

A rate is **sustained** when, over a step of ``step_s`` seconds of open-model load at that
rate, the producer acknowledged at least 95 % of it (over the step's last two thirds), the
target's backlog (the left side of its ``drained`` condition) stayed under one second of
messages from a third of the step on, and the ledger lost nothing. Each step is a run with its
own folder, so a surprising figure can be read back like any run.

The **catch-up rate** is how fast the consumers drain a backlog once they return: load at the
sustained rate while every replica of the consumer is paused (SIGSTOP), until ``backlog``
messages wait; the pause heals a second after the load ends, and the rate is the processings
after the heal over the time from the heal to the last of them (read from the processed
ledger's times).
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.capacity import store
from harness.capacity.share import CapacityUnmeasured, Subject
from harness.errors import HarnessError, Interrupted, MissingComponent, SpecError
from harness.journal import Journal
from harness.ledger.files import database, load_processings
from harness.loader import load_experiment
from harness.report.console import Progress
from harness.spec import Experiment
from harness.target_checks import no_such
from harness.verdict import Verdict
from harness.yamlsource import Override

ACKNOWLEDGED = 0.95  # of the rate, over the step's last two thirds
STEP_S = 20.0
LOWEST_RATE = 1.0
HIGHEST_RATE = 100_000.0  # far past what one machine's load sends (docs/benchmarks.md)
BISECTIONS = 3  # after the doubling: the rate within an eighth of the gap
CATCH_UP_S = 10.0  # the default backlog: this many seconds of the sustained rate
PAUSE = "consumers-away"
NOTHING_LOST = {"name": "nothing lost", "ledger": "lost", "expect": "== 0"}


@dataclass
class Settings:
    sweeps: int = 3
    start: float = 50.0
    rates: tuple[float, ...] = ()  # given: tried in order, stopping at the first not sustained
    step_s: float = STEP_S
    bisections: int = BISECTIONS
    backlog: int | None = None  # default: CATCH_UP_S of the sustained rate
    consumer: str | None = "worker"  # paused for the catch-up; None: no catch-up run
    runs_dir: Path = Path("runs")


class Measuring:
    """The runs of one measurement, told line by line through ``tell``."""

    def __init__(
        self,
        subject: Subject,
        settings: Settings,
        progress: Progress,
        tell: Callable[[str], None],
    ) -> None:
        self.subject = subject
        self.settings = settings
        self.progress = progress
        self.tell = tell
        # The generated experiments; each run folder keeps a copy of its own.
        self._files = tempfile.TemporaryDirectory(prefix="harness-capacity-")
        self.folder = Path(self._files.name)
        self.runs: list[str] = []
        # Each kind of run is loaded once before any starts: bad input costs no run.
        probe = {"load": {"rate": "1/s", "duration": "1s"}, "checks": [NOTHING_LOST]}
        self.topology = self._experiment(_write(subject, self.folder, "target", probe)).topology
        self._experiment(self._step_file(settings.start))
        consumer = settings.consumer
        if consumer is not None:
            if consumer not in self.topology.components:
                known = no_such("component", consumer, self.topology.components)
                raise SpecError("command line", None, "--consumer", known)
            self._experiment(self._catch_up_file(settings.start, 100))

    def measure(self) -> store.Measurement:
        try:
            return self._measure()
        finally:
            self._files.cleanup()

    def _measure(self) -> store.Measurement:
        rates: list[float] = []
        catch_ups: list[float] = []
        backlog = 0
        for sweep in range(1, self.settings.sweeps + 1):
            self.tell(f"sweep {sweep} of {self.settings.sweeps}:")
            rate = self.sweep()
            rates.append(rate)
            if rate <= 0 or self.settings.consumer is None:
                continue
            backlog = self.settings.backlog or max(100, math.ceil(CATCH_UP_S * rate))
            caught = self.catch_up(rate, backlog)
            if caught is not None:
                catch_ups.append(caught)
        if not any(rates):
            raise NotSustained(
                f"{self.topology.name} sustained no rate tried, down to {LOWEST_RATE:g}/s: "
                "see the runs above"
            )
        return store.Measurement(
            target=self.topology.name,
            key=store.key(self.topology),
            host=store.host(),
            cores=store.cores(),
            measured_at=store.now(),
            rate_per_s=statistics.median(rates),
            rates_per_s=tuple(rates),
            catch_up_per_s=statistics.median(catch_ups) if catch_ups else None,
            catch_ups_per_s=tuple(catch_ups),
            backlog=backlog,
            step_s=self.settings.step_s,
            overrides=self.subject.sets,
            runs=tuple(self.runs),
        )

    def sweep(self) -> float:
        """The highest rate sustained: doubling from the start while sustained (halving while
        not), then the gap to the lowest rate not sustained halved ``bisections`` times; with
        given rates, the last before the first not sustained."""
        if self.settings.rates:
            best = 0.0
            for rate in self.settings.rates:
                if not self.step(rate):
                    break
                best = rate
            return best
        rate = self.settings.start
        held, failed = (rate, None) if self.step(rate) else (0.0, rate)
        while failed is None:  # up, while sustained
            rate = rounded(rate * 2)
            if rate > HIGHEST_RATE:
                return held
            held, failed = (rate, None) if self.step(rate) else (held, rate)
        while held == 0:  # down, while not
            rate = rounded(rate / 2)
            if rate < LOWEST_RATE:
                return 0.0
            held, failed = (rate, failed) if self.step(rate) else (0.0, rate)
        for _ in range(self.settings.bisections):
            middle = rounded((held + failed) / 2)
            if middle in (held, failed):
                break
            held, failed = (middle, failed) if self.step(middle) else (held, middle)
        return held

    def step(self, rate: float) -> bool:
        """Whether one run at ``rate`` sustained it; its line says what the checks saw."""
        journal, error = self._run(self._step_file(rate))
        held = journal is not None and journal.verdict is Verdict.HELD
        observed = error or _observed(journal)
        self.tell(f"  {rate:g}/s: {'sustained' if held else 'not sustained'}: {observed}")
        return held

    def catch_up(self, rate: float, backlog: int) -> float | None:
        """The rate the consumers drain ``backlog`` messages at once they return."""
        journal, error = self._run(self._catch_up_file(rate, backlog))
        caught = None if journal is None else catch_up_rate(journal)
        if caught is None:
            why = error or "the processed ledger gives no times after the consumers returned"
            self.tell(f"  catch-up: not measured: {why}")
        else:
            drained = f"draining a backlog of {backlog:,} messages"
            self.tell(f"  catch-up: {per_second(caught)} {drained}")
        return caught

    def _step_file(self, rate: float) -> Path:
        backlog = self.topology.drained.expr  # the left side of its condition
        return step_file(self.subject, rate, self.settings.step_s, backlog, self.folder)

    def _catch_up_file(self, rate: float, backlog: int) -> Path:
        assert self.settings.consumer is not None  # only a measurement with a catch-up asks
        return catch_up_file(self.subject, rate, backlog, self.settings.consumer, self.folder)

    def _experiment(self, path: Path) -> Experiment:
        return load_experiment(path, self.subject.sets)

    def _run(self, path: Path) -> tuple[Journal | None, str | None]:
        """The run of one generated experiment: its journal, or why it has none."""
        from harness.runner import run  # the runner pulls in every step

        experiment = self._experiment(path)
        try:
            result = run(experiment, self.settings.runs_dir, progress=self.progress,
                         overrides=self.subject.sets)  # fmt: skip
        except (Interrupted, MissingComponent):
            raise  # stopped, or a machine not ready, where no rate would be sustained
        except HarnessError as exc:
            return None, str(exc)
        if isinstance(result.error, Interrupted):
            raise result.error
        self.runs.append(result.journal.run_dir)
        return result.journal, None if result.error is None else str(result.error)


def measured(
    experiment: Experiment,
    sets: Sequence[str | Override],
    progress: Progress,
    tell: Callable[[str], None],
) -> Experiment:
    """An experiment loaded with ``stand_in``, with its share of capacity read from this
    machine's measurement instead, made first when there is none: quicker than ``harness
    capacity`` (one sweep of 10 s steps, the gap halved twice, no catch-up, which a share does
    not need), its runs kept beside the measurement rather than among the experiment's."""
    if experiment.capacity is None or experiment.capacity.measured is not None:
        return experiment
    try:
        return load_experiment(experiment.file, sets)
    except CapacityUnmeasured as missing:
        name = missing.name
        tell(f"{experiment.file}: the capacity of {name} is not measured on this machine yet; "
             f"measuring it first (one quick sweep: `harness capacity {name}` measures it "
             "finer, with its spread)")  # fmt: skip
        settings = Settings(sweeps=1, step_s=10.0, bisections=2, consumer=None,
                            runs_dir=store.folder() / "runs")  # fmt: skip
        found = Measuring(missing.subject, settings, progress, tell).measure()
        store.keep(found)
        tell(f"capacity of {name}: {per_second(found.rate_per_s)} (stored)")
    return load_experiment(experiment.file, sets)


class NotSustained(HarnessError):
    """No rate held, down to the lowest: the target does not run here as it is."""

    exit_code = 2


def rounded(rate: float) -> float:
    """Two significant figures, so that the rates tried read as a person would pick them."""
    if rate <= 0:
        return 0.0
    digits = 1 - math.floor(math.log10(rate))
    return float(round(rate, digits))


def step_file(subject: Subject, rate: float, step_s: float, backlog: str, folder: Path) -> Path:
    """The experiment of one step: open-model load at ``rate``, no faults, three checks."""
    settle = max(1.0, round(step_s / 3, 1))
    window = max(1, math.floor(step_s - settle))
    checks = [
        {
            "name": "acknowledged",
            "query": f'sum(rate(harness_load_requests_total{{outcome="ok"}}[{window}s]))',
            "at": "load.end",
            "expect": f">= {ACKNOWLEDGED * rate:g}",
        },
        {
            "name": "backlog under a second of messages",
            "query": backlog,
            "from": f"load.start+{settle:g}s",
            "to": "load.end",
            "expect": f"< {rate:g}",
        },
        NOTHING_LOST,
    ]
    return _write(subject, folder, f"capacity-{rate:g}", {
        "load": {"rate": f"{rate:g}/s", "duration": f"{step_s:g}s", "model": "open"},
        "drain": "30s",
        "checks": checks,
    })  # fmt: skip


def catch_up_file(subject: Subject, rate: float, backlog: int, consumer: str, folder: Path) -> Path:
    """The experiment of a catch-up: ``backlog`` sends at ``rate`` while every replica of the
    consumer is paused, healed a second after the load."""
    load_s = max(1.0, round(backlog / rate, 1))
    drain_s = max(60.0, math.ceil(10 * load_s))
    timeline = [{"name": PAUSE, "at": "0s", "for": f"{load_s + 1:g}s", "fault": "pause",
                 "component": consumer}]  # fmt: skip
    return _write(subject, folder, f"catch-up-{backlog}", {
        "load": {"rate": f"{rate:g}/s", "duration": f"{load_s:g}s", "model": "open"},
        "drain": f"{drain_s:g}s",
        "timeline": timeline,
        "checks": [NOTHING_LOST],
    })  # fmt: skip


def _write(subject: Subject, folder: Path, name: str, body: dict[str, Any]) -> Path:
    """An experiment file (JSON, which is YAML) on the subject's target."""
    document: dict[str, Any] = {"name": name, "target": str(subject.target.resolve())}
    if subject.overrides:
        document["overrides"] = subject.overrides
    document.update(body)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def catch_up_rate(journal: Journal) -> float | None:
    """Processings after the consumers returned, over the time from then to the last one."""
    healed = journal.moments.get(f"{PAUSE}.end")
    processed = Path(journal.run_dir) / "ledger" / "processed.jsonl"
    if healed is None or not processed.exists():
        return None
    with database() as db:
        load_processings(db, processed, ("t",))
        count, last = db.execute(
            "SELECT count(*), max(TRY_CAST(t AS DOUBLE)) FROM processings "
            "WHERE TRY_CAST(t AS DOUBLE) > ?",
            [healed],
        ).fetchone() or (0, None)
    if not count or last is None or last <= healed:
        return None
    return float(count) / (float(last) - healed)


def _observed(journal: Journal | None) -> str:
    if journal is None:
        return ""
    seen = "; ".join(f"{c.name} {c.observed}" for c in journal.checks)
    return seen or (journal.reason or journal.verdict.value)


def per_second(rate: float) -> str:
    """A measured rate as a person reads it: whole above 100/s, three figures below."""
    return f"{rate:,.0f}/s" if rate >= 100 else f"{rate:.3g}/s"


def median_and_range(values: Sequence[float]) -> str:
    """``650/s (600 to 700)``, or the one value."""
    if not values:
        return "not measured"
    middle = per_second(statistics.median(values))
    if len(values) == 1 or min(values) == max(values):
        return middle
    return f"{middle} ({per_second(min(values))} to {per_second(max(values))})"
