"""The run loop: deploy → observe → load and faults → drain → judge → report, and teardown always.

Everything started is registered on an ExitStack the moment it starts, so teardown runs in
reverse order on success, on failure, on an exception and on SIGINT/SIGTERM (``signals``). What
the run stands on is ``stack``'s, judging and the journal ``judge``'s: this module keeps the
order of the phases and their timing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from harness import judge, secrets, signals, stack
from harness.abort import AbortWatch
from harness.checks import Awaited, CheckResult, missing_metrics
from harness.context import RunContext
from harness.deploy.commands import HostCommands
from harness.errors import Aborted, HarnessError, Interrupted
from harness.faults import FaultTools
from harness.journal import Journal, Outcome, write_json
from harness.load import LoadPlan, LoadProcess, RemoteWorkers, load_address
from harness.load.pacing import due_times
from harness.load.shape import Phase
from harness.observe.live import LiveNumbers
from harness.observe.promql import PromQL, PromQLError
from harness.report import html, junit
from harness.report.console import Plan, Progress
from harness.spec import LOAD_TIMEOUT_S, Experiment
from harness.store import RunFolder
from harness.timeline import FaultStep, Scheduler, expand, plan
from harness.topology import DEFAULT_BODY, KEYED_BODY
from harness.units import Condition, Expectation
from harness.verdict import Verdict

if TYPE_CHECKING:
    from grafana_client.api import GrafanaApi

    from harness.report.grafana import Annotator

FIRST_SCRAPE_TIMEOUT_S = 20.0
# A fault earlier than this after load start might find no scrape yet to measure the steady
# state before it, so the load first waits until every component has been scraped once.
FIRST_SCRAPE_MARGIN_S = 8.0
POLL_S = 0.05
# A busy machine delays a scrape by a second or two, never by this much.
SCRAPE_AFTER_DRAIN_TIMEOUT_S = 5.0

Tick = Callable[[], None]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    verdict: Verdict
    journal: Journal
    error: HarnessError | None = None


def run(
    experiment: Experiment,
    runs_dir: Path = Path("runs"),
    seed: int | None = None,
    progress: Progress | None = None,
    overrides: tuple[str, ...] = (),
    remote_load_workers: RemoteWorkers | None = None,
    grafana_api: GrafanaApi | None = None,
    skip_faults: bool = False,
    control: Journal | None = None,
) -> RunResult:
    """Run one experiment end to end; the verdict and journal come back even when it aborts.

    ``skip_faults``: a control run, whose faults are journaled at their times and not applied.
    ``control``: the finished control run of this one, which its journal links.
    ``remote_load_workers``: Locust workers someone starts elsewhere with ``harness load-worker``;
    the load waits for them (and for ``load.workers`` local ones) before it starts.
    ``grafana_api``: a Grafana to annotate with the run's faults and phases as they happen.
    """
    progress = progress or Progress()
    say = progress.say
    stack.find_infrastructure()
    ctx = RunContext.open(
        experiment, runs_dir, seed if seed is not None else random.randrange(2**31), say
    )
    ctx.remote_load_workers = remote_load_workers
    ctx.faults_skipped = skip_faults
    annotator = _annotator(grafana_api, ctx)
    say(
        f"run {ctx.run_id}: experiment {escape(experiment.name)} on target "
        f"{escape(experiment.topology.name)}, "
        f"seed {ctx.seed} (--seed {ctx.seed} replays its random choices)"
    )
    if skip_faults:
        say("control run: its faults are skipped, their moments kept")
    error: HarnessError | None = None
    checks: list[CheckResult] = []
    with signals.guarded() as guard:
        try:
            with ExitStack() as teardown:
                teardown.callback(ctx.torn_down)  # registered first, so it runs last
                try:
                    checks = _execute(ctx, teardown, progress)
                finally:
                    ctx.teardown_from = time.time()
                guard.quiet()
                say("tearing down")
        except HarnessError as exc:
            error = exc
            say(f"[red]{escape(str(exc))}[/red]")
        except Exception as exc:  # a bug of the harness's: the run still gets its verdict
            error = _internal_error(ctx.run_dir, exc)
            say(f"[red]{escape(str(error))}[/red]")
    if annotator is not None:
        annotator.close()
    journal = judge.journal(ctx, checks, error, overrides, control)
    write_json(ctx.folder.journal, journal.to_json())
    junit.write(ctx.folder.junit, [junit.Suite.of(journal)])
    html.write(ctx.run_dir, journal, ctx.charts)
    ctx.log.close()
    return RunResult(ctx.run_dir, journal.verdict, journal, error)


def _internal_error(run_dir: Path, exc: Exception) -> HarnessError:
    """An error the harness did not expect, as the reason of an inconclusive run; its
    traceback is kept in the run folder for a bug report."""
    path = RunFolder(run_dir).harness_error
    path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return HarnessError(
        f"the harness failed ({type(exc).__name__}: {exc}); the run is torn down, and the "
        f"traceback is in {path}"
    )


def stand(
    experiment: Experiment,
    runs_dir: Path,
    prometheus_port: int,
    ready: Callable[[stack.Standing, Path], None],
    progress: Progress | None = None,
) -> Path:
    """Deploy the experiment's target, its links and a Prometheus, and keep them until SIGTERM
    or Ctrl-C: no load, no fault. ``ready`` is told once everything answers."""
    stack.find_infrastructure()
    ctx = RunContext.open(experiment, runs_dir, 0, (progress or Progress()).say)
    # The first signal ends the wait; teardown then runs with signals ignored.
    with signals.guarded(), contextlib.suppress(Interrupted), ExitStack() as teardown:
        teardown.callback(ctx.torn_down)
        ready(stack.deploy(ctx, teardown, prometheus_port), ctx.run_dir)
        while True:
            time.sleep(1)
    ctx.log.close()
    return ctx.run_dir


def _annotator(api: GrafanaApi | None, ctx: RunContext) -> Annotator | None:
    if api is None:
        return None
    from harness.report.grafana import Annotator  # grafana-client takes 0.15 s to import

    topology = ctx.experiment.topology
    run = {"run_id": ctx.run_id, "experiment": ctx.experiment.name, "target": topology.name}
    annotator = Annotator(api, run, lambda text: ctx.say(f"[yellow]{escape(text)}[/yellow]"))
    ctx.log.listeners.append(annotator)
    ctx.say(f"annotating Grafana at {escape(secrets.url(str(api.url)))}")
    return annotator


def _execute(ctx: RunContext, teardown: ExitStack, progress: Progress) -> list[CheckResult]:
    say = progress.say
    experiment, topology, spec = ctx.experiment, ctx.experiment.topology, ctx.experiment.spec
    standing = stack.deploy(ctx, teardown)
    promql = standing.promql

    steps = expand(experiment, random.Random(ctx.seed))
    if any(step.at_s < FIRST_SCRAPE_MARGIN_S for step in steps):
        _await_first_scrape(ctx, promql, standing.scraped)

    load = _load(ctx, standing)
    commands = HostCommands(
        standing.deployment, experiment.topology_file.parent, ctx.run_dir, standing.where
    )
    tools = FaultTools(standing.network, standing.deployment, commands)
    scheduler = Scheduler(steps, tools, ctx.log, ctx.state, skip=ctx.faults_skipped)
    ctx.load.extend(load.processes)
    teardown.callback(ctx.safely, "stop load", load.stop)
    teardown.callback(ctx.safely, "heal faults", scheduler.heal_all)
    if remote := ctx.remote_load_workers:
        say(
            f"waiting for {remote.count} load worker(s): run `harness load-worker --master "
            f"{remote.host}:{remote.port}` where they should run"
        )
    t_invoke = time.time()
    load.start()  # returns once users send: the run's clock starts with the load
    scheduler.start()
    t_load = time.time()
    ctx.mark("start", t_load)
    ctx.mark("load.start", t_load)
    load_spec = spec.load
    rate, duration, model = load_spec.peak_rate, load_spec.duration, load_spec.arrivals
    shape = (
        load_spec.shape.model_dump(mode="json", by_alias=True, exclude_none=True)
        if load_spec.shape
        else None
    )
    ctx.log.now(
        "load.start", "load", Outcome.OK, t_invoke, rate=rate, duration_s=duration, model=model,
        **({"shape": shape} if shape else {}),
    )  # fmt: skip
    _mark_phases(ctx, t_load)
    how = f"open model, at most {load_spec.in_flight_cap} in flight" if model == "open" else model
    what = f"shaped ({next(iter(shape))}), at most {rate:g} msg/s" if shape else f"{rate:g} msg/s"
    if experiment.capacity and experiment.capacity.measured:
        share, measured = experiment.capacity, experiment.capacity.measured
        what += (f" ({share.percent:g}% of the capacity measured {measured.measured_at[:10]}: "
                 f"{measured.rate_per_s:g}/s)")  # fmt: skip
    say(f"load: {what} for {duration:g}s ({how})")
    numbers = LiveNumbers(promql.base_url, topology.queue)
    numbers.start()
    teardown.callback(numbers.stop)
    teardown.callback(progress.end)
    phases = load_spec.shape.phases(duration) if load_spec.shape else []
    progress.begin(_console_plan(steps, duration, numbers, phases))
    watch = AbortWatch(spec.abort_if, promql, time.monotonic(), spec.time_limit_s)

    def tick() -> None:
        """Each pass of a wait: the abort conditions, the CPU readings, the console."""
        watch.check()
        _sample(ctx, progress)

    try:
        _drive(ctx, scheduler, load, tick)
        _mark_phases(ctx, _schedule_start(ctx))
        progress.enter("drain")
        _drain(ctx, promql, topology.drained, spec.drain, tick)
        progress.end()
    except Aborted as exc:
        ctx.log.now("abort", "run", Outcome.INFO, reason=exc.reason)
        say(f"[magenta]{escape(str(exc))}; healing every fault and stopping the load[/magenta]")
        raise
    ctx.footprint.sample(force=True)  # the last reading before teardown stops everything
    return judge.judge(ctx, promql)


def _load(ctx: RunContext, standing: stack.Standing) -> LoadProcess:
    """The load generator, planned against the component the topology's load enters by."""
    topology, load_spec = ctx.experiment.topology, ctx.experiment.spec.load
    entry = topology.load.component
    host, publish = load_address(
        topology.load, topology.queue, standing.where.ports[entry][0],
        standing.where.hosts[entry][0],
    )  # fmt: skip
    return LoadProcess(
        LoadPlan(
            host=host,
            path=topology.load.path,
            # A keyed load's messages carry their key where the default body has none.
            body=KEYED_BODY
            if load_spec.key and topology.load.body == DEFAULT_BODY
            else topology.load.body,
            key=load_spec.key or "",
            content_type=topology.load.content_type,
            publish=publish,
            rate=load_spec.peak_rate,
            duration_s=load_spec.duration,
            metrics_port=standing.load_port,
            metrics_host=standing.load_host,
            ledger_path=ctx.folder.sent,
            log_path=ctx.folder.log("load"),
            users=load_spec.users,
            seed=ctx.seed,
            workers=load_spec.workers,
            model=load_spec.arrivals,
            shape=tuple(load_spec.shape.segments(load_spec.duration)) if load_spec.shape else (),
            max_in_flight=load_spec.in_flight_cap,
            timeout_s=LOAD_TIMEOUT_S,
            master_port=ctx.ports.allocate() if load_spec.workers else None,
            remote=ctx.remote_load_workers,
        )
    )


def _mark_phases(ctx: RunContext, start: float | None) -> None:
    """The moments at the edges of the load shape's phases, from the schedule's start."""
    shape, duration = ctx.experiment.spec.load.shape, ctx.experiment.spec.load.duration
    if shape is None or start is None:
        return
    for phase, begins, ends in shape.phases(duration):
        ctx.mark(f"load.{phase}.start", start + begins)
        ctx.mark(f"load.{phase}.end", start + ends)


def _schedule_start(ctx: RunContext) -> float | None:
    """When the shape's schedule began, from its first send's due time (less that send's place
    in the schedule: a shape may start at 0/s). Locust's clock starts a moment before the
    harness hears that its users send, which the phases must not be skewed by."""
    shape, duration = ctx.experiment.spec.load.shape, ctx.experiment.spec.load.duration
    if shape is None:
        return None
    first = next(due_times(0.0, shape.segments(duration), 1, 0), 0.0)
    sent = ctx.folder.sent
    with contextlib.suppress(OSError, ValueError, KeyError), sent.open(encoding="utf-8") as lines:
        for line in itertools.islice(lines, 100):
            record = json.loads(line)
            if record.get("type") == "invoke" and "due" in record:
                return float(record["due"]) - first
    return None


def _console_plan(
    steps: list[FaultStep], duration_s: float, numbers: LiveNumbers, phases: list[Phase]
) -> Plan:
    events = [
        (item.t_s, f"{item.action.value} {item.step.label} ({item.step.kind})")
        for item in plan(steps)
    ]
    events.extend((begins, f"load.{name} starts") for name, begins, _ in phases if begins > 0)
    events.append((duration_s, "load ends"))
    return Plan(duration_s, tuple(sorted(events)), numbers.values)


def wait_until(
    condition: Callable[[], bool], timeout_s: float | None, every_s: float, tick: Tick | None
) -> bool:
    """Whether ``condition`` came to hold, asked every ``every_s`` for at most ``timeout_s``
    (``None``: until it holds), with ``tick`` (which may raise Aborted) between asks."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not condition():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if tick is not None:
            tick()
        time.sleep(every_s)
    return True


def _holds(promql: PromQL, condition: Condition) -> bool:
    """Whether every series of ``condition`` holds now; no answer, or no series, is no."""
    with contextlib.suppress(PromQLError):
        samples = promql.instant(condition.expr)
        return bool(samples) and all(condition.expectation.holds(s.value) for s in samples)
    return False


def _await_first_scrape(ctx: RunContext, promql: PromQL, targets: int) -> None:
    """Wait until every component has been scraped once, so steady state can be measured."""
    t_invoke = time.time()
    scraped = Condition('count(up{job!="load"} == 1)', Expectation(">=", targets))
    ready = wait_until(lambda: _holds(promql, scraped), FIRST_SCRAPE_TIMEOUT_S, 0.2, None)
    outcome = Outcome.OK if ready else Outcome.FAIL
    ctx.log.now("observe.ready", "prometheus", outcome, t_invoke, targets=targets)
    if outcome is Outcome.FAIL:
        ctx.say(
            "[yellow]prometheus has not scraped every component yet; checks may lack data[/yellow]"
        )


def _drive(ctx: RunContext, scheduler: Scheduler, load: LoadProcess, tick: Tick) -> None:
    """Apply and heal faults on time until the load is over and every fault is healed."""
    seen = len(ctx.log.events)
    load_code: int | None = None
    while True:
        scheduler.run_due()  # first: a due fault waits for nothing
        tick()
        for event in ctx.log.events[seen:]:
            if event.kind.startswith("fault."):
                ctx.note_fault(event)
                what = f"{event.value.get('fault')} on {escape(event.target)}"
                if event.kind == "fault.skipped":
                    ctx.say(f"fault.{event.value.get('at')} {what}: skipped")
                else:
                    ctx.say(f"{event.kind} {what}: {event.outcome.value}")
        seen = len(ctx.log.events)
        if load_code is None and (load_code := load.wait(0)) is not None:
            _load_ended(ctx, load_code)
        due = scheduler.next_due()
        if load_code is not None and due is None:
            return
        time.sleep(POLL_S if due is None else min(POLL_S, max(0.0, due - time.monotonic())))


def _load_ended(ctx: RunContext, code: int) -> None:
    ctx.mark("load.end", time.time())
    ctx.log.now("load.end", "load", Outcome.OK if code == 0 else Outcome.FAIL, exit_code=code)
    ctx.say(f"load finished (exit {code})")
    if code != 0:
        ctx.load_failure = f"the load generator (Locust) exited with code {code}; see logs/load.log"


def _drain(ctx: RunContext, promql: PromQL, drained: Condition, limit_s: float, tick: Tick) -> None:
    """Wait for the backlog to empty (at most ``limit_s``); the run's end is when it did."""
    t_invoke = time.time()
    ctx.drained = wait_until(lambda: _holds(promql, drained), limit_s, 0.25, tick)
    _await_recoveries(ctx, promql, tick)
    # One more scrape as before (a recovery still under way gets that long), and then until
    # every component's last scrape is after the drain.
    time.sleep(1.2)
    _await_scrape_after(promql, time.time())
    ctx.mark("end", time.time())
    outcome = Outcome.OK if ctx.drained else Outcome.FAIL
    ctx.log.now("drain", "target", outcome, t_invoke, condition=str(drained))
    ctx.say("drained" if ctx.drained else f"[yellow]not drained after {limit_s:g}s[/yellow]")


def _await_recoveries(ctx: RunContext, promql: PromQL, tick: Tick) -> None:
    """Keep the run going while a recovery check's condition is false and its window open.

    The drain's condition need not cover what such a check watches (notifications still being
    delivered, a lag still shrinking), and a run that ended then would judge a condition on its
    way back as never recovered. Waiting for every window to close instead would add the whole
    ``within`` to most runs: a condition that holds ends the wait for its check.
    """
    lacks = ctx.experiment.topology.lacks
    pending = {
        check.name: waits
        for check in ctx.experiment.spec.checks
        if isinstance(check, Awaited)
        and (waits := check.awaits(ctx.moments)) is not None
        and not missing_metrics(waits[0].expr, lacks)  # not applicable: nothing to wait for
    }

    def settled() -> bool:
        for name, (condition, closes) in list(pending.items()):
            if time.time() >= closes or _holds(promql, condition):
                del pending[name]
        return not pending

    wait_until(settled, None, 0.5, tick)


def _sample(ctx: RunContext, progress: Progress) -> None:
    """Read the processes' and the host's CPU, say once when the host's is saturated (the
    verdict will say so too), and let the console tick."""
    ctx.footprint.sample()
    if (span := ctx.footprint.host.newly_saturated()) is not None:
        progress.say(
            f"[yellow]the host's CPU has been saturated for {span.end - span.start:.0f}s "
            f"({span.cores_busy}): timing checks over that time will say so[/yellow]"
        )
    progress.tick()


def _await_scrape_after(promql: PromQL, t: float) -> None:
    """Wait until every component has been scraped after ``t``, so that the last samples
    before ``end`` show the state at ``t``: each target is scraped at its own offset in the
    interval, later when the machine is busy, and a counter one scrape behind reads as work
    still owed."""
    after = Condition('min(timestamp(up{job!="load",instance_name!=""}))', Expectation(">", t))
    wait_until(lambda: _holds(promql, after), SCRAPE_AFTER_DRAIN_TIMEOUT_S, 0.2, None)
