"""Judging a run: the ledger read from the target's source, the holes in the metrics and the
stretches of saturation found, every check evaluated on that evidence, and the journal built.

Everything here runs after the drain, while the target and Prometheus still run, and reads
only what the run recorded (its moments, events, ledger files and Prometheus), so that what
a verdict rests on is in the run folder.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.markup import escape

from harness import secrets
from harness.checks import CheckResult, Evidence, ThresholdCheck, evaluate
from harness.checks.effect import EffectCheck
from harness.checks.ledger import LedgerCheck
from harness.context import RunContext
from harness.deploy.base import fill_outside
from harness.errors import HarnessError
from harness.faults.evidence import Effect, told
from harness.faults.evidence import effects as fault_effects
from harness.journal import ControlLink, Event, Journal, Outcome
from harness.ledger import LedgerSummary, sources, summary
from harness.ledger.files import LedgerUnreadable
from harness.ledger.sources import PLACE_ROLES
from harness.observe.footprint import HostSpan, own_cpu_s
from harness.observe.gaps import WHY_SATURATED, Gap, find_gaps, meant_down, saturation_gaps
from harness.observe.promql import PromQL, PromQLError
from harness.report import charts, panels
from harness.spec import Experiment, SteadyState
from harness.store import RunFolder
from harness.topology import Output
from harness.units import Moment
from harness.verdict import run_verdict

# A replica a fault restarted is scraped again within a scrape or two of its heal.
RESTART_GRACE_S = 3.0


def _read_ledger_sources(ctx: RunContext) -> None:
    """Write the processed side of the ledger from the topology's source, if it names one, and
    each of its places and its output's effects: one line per processing (or per id found, or
    per effect), as the reference sink writes it, so everything after reads one format; and
    the output's positions, one number per partition each. A source that cannot be read
    leaves no ledger, and the ledger checks say why."""
    if ctx.layout is None:
        return
    topology = ctx.experiment.topology
    for at, source in topology.ledger_sources():
        name, path = _ledger_file(ctx, at)
        if (counts := _read_source(ctx, name, source)) is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for message_id, times in counts.items():
                line = json.dumps({"id": message_id, "source": source.source}) + "\n"
                out.write(line * times)
    positions: dict[str, dict[str, int]] = {}
    for at, position in topology.position_sources():
        if (counts := _read_source(ctx, ".".join(("ledger", *at)), position)) is None:
            return
        positions[at[-1]] = dict(counts)
    if positions:
        ctx.folder.positions.parent.mkdir(parents=True, exist_ok=True)
        ctx.folder.positions.write_text(json.dumps(positions), encoding="utf-8")


def _read_source(
    ctx: RunContext, name: str, source: sources.LedgerSource | sources.KafkaOffsets
) -> Counter[str] | None:
    """The source's counts (placeholders filled), journaled; None when it cannot be read, and
    then the run's ledger problem says why."""
    assert ctx.layout is not None
    folder, layout = ctx.experiment.topology_file.parent, ctx.layout
    filled = source.filled(lambda text: fill_outside(text, folder, ctx.run_dir, layout))
    t_invoke = time.time()
    try:
        counts = sources.read(filled)
    except sources.LedgerSourceError as exc:
        ctx.ledger_problem = str(exc)
        ctx.log.now("ledger.read", name, Outcome.FAIL, t_invoke, error=str(exc))
        ctx.say(f"[yellow]ledger not read: {escape(str(exc))}[/yellow]")
        return None
    ctx.log.now(
        "ledger.read", name, Outcome.OK, t_invoke, source=sources.describe(filled),
        ids=len(counts), processings=sum(counts.values()),
    )  # fmt: skip
    return counts


def _ledger_file(ctx: RunContext, at: tuple[str, ...]) -> tuple[str, Path]:
    """The name a ledger source's reading is logged under, and the run folder's file for it."""
    if at == ("ledger",):
        return "ledger", ctx.folder.processed
    if at[0] == "places":
        return f"ledger.places.{at[1]}", ctx.folder.place(at[1])
    return "ledger.output.effects", ctx.folder.effects


def judge(ctx: RunContext, promql: PromQL) -> list[CheckResult]:
    """Every check of the experiment, the steady state's first, judged on the run's evidence."""
    _read_ledger_sources(ctx)
    if ctx.ledger_problem is None:  # else an empty processed side would read as all lost
        ctx.ledger, ctx.ledger_problem = read_ledger(ctx.run_dir)
        if ctx.ledger_problem is not None:
            ctx.say(f"[yellow]{escape(ctx.ledger_problem)}[/yellow]")
    gaps = _scrape_gaps(ctx, promql) + _saturation(ctx, promql)
    _delayed_sends(ctx, promql)
    evidence = Evidence(
        promql,
        dict(ctx.moments),
        ctx.ledger,
        ctx.drained,
        gaps,
        ctx.experiment.topology.lacks,
        ctx.ledger_problem,
        _host_saturation(ctx),
        [] if ctx.faults_skipped else _fault_effects(ctx),
    )
    return evaluate_all(ctx.experiment, evidence, ctx.faults_skipped)


def _fault_effects(ctx: RunContext) -> list[Effect]:
    """What each fault's occurrences touched, journaled; the console says it once per fault."""
    t_invoke = time.time()
    folder = ctx.folder
    found = fault_effects(ctx.log.events, ctx.experiment.topology, folder.processed, folder.traffic)
    for effect in found:
        ctx.log.now("fault.effect", effect.target, effect.outcome(), t_invoke, **effect.value())
    for label in dict.fromkeys(e.label for e in found):
        bit, text = told([e for e in found if e.label == label])
        if bit:
            ctx.say(f"{label}: {escape(text)}")
        else:
            ctx.say(f"[yellow]{label}: no evidence it took effect ({escape(text)})[/yellow]")
    return found


def steady_state_checks(
    steady: Sequence[SteadyState], has_faults: bool
) -> list[tuple[str, ThresholdCheck]]:
    """Each steady-state condition as a threshold before the first fault and at the end."""
    moments = [("before faults", "fault.start")] if has_faults else []
    moments.append(("after recovery", "end"))
    return [
        (
            "steady state",
            ThresholdCheck(
                name=f"steady state {label}: {s.name}",
                query=s.query,
                at=Moment.parse(at),
                expect=s.expect,
            ),
        )
        for s in steady
        for label, at in moments
    ]


def promised_checks(output: Output) -> list[LedgerCheck]:
    """What a target that promises exactly-once output is judged on in every run."""
    if output.promise != "exactly-once":
        return []
    promised = [("the output is exactly once, as the target promises", "duplicated")]
    if output.effects is not None:
        promised.append(
            ("the output holds one effect per message, as the target promises", "excess")
        )
    if output.positions is not None:
        promised.append(
            (
                "each partition's committed position is its records processed, as the target "
                "promises",
                "mismatched_positions",
            )
        )
    return [
        LedgerCheck.model_validate({"name": name, "ledger": value, "expect": "== 0"})
        for name, value in promised
    ]


def evaluate_all(
    experiment: Experiment, evidence: Evidence, faults_skipped: bool = False
) -> list[CheckResult]:
    """The steady state's checks (before the first fault, and at the end), then the
    experiment's, then those of the target's promise, then whether each fault that must
    take effect did (not in a control run, which skipped them)."""
    spec = experiment.spec
    checks = [c for _, c in steady_state_checks(spec.steady_state, bool(experiment.faults))]
    promised = promised_checks(experiment.topology.output)
    required = [
        EffectCheck.of(entry.label)
        for entry in experiment.faults
        if entry.require_effect and not faults_skipped
    ]
    every = [*checks, *spec.checks, *promised, *required]
    return [evaluate(check, evidence) for check in every]


def read_ledger(run_dir: Path) -> tuple[LedgerSummary | None, str | None]:
    """The ledger from the run folder's two files, or why it cannot be read."""
    folder = RunFolder(run_dir)
    try:
        places = {role: folder.place(role) for role in PLACE_ROLES}
        effects = folder.effects if folder.effects.is_file() else None
        positions = folder.positions if folder.positions.is_file() else None
        return summary.read(folder.sent, folder.processed, places, effects, positions), None
    except LedgerUnreadable as exc:
        return None, f"the ledger cannot be read: {exc}"


def stored_evidence(journal: Journal, experiment: Experiment, promql: PromQL) -> Evidence:
    """What a finished run's checks were judged on, from what the run folder keeps: the
    journal's moments and events, the ledger's files, and the run's Prometheus data (served
    again, by ``harness.rejudge``)."""
    events, moments = journal.timeline, journal.moments
    unread = [e for e in events if e.kind == "ledger.read" and e.outcome is Outcome.FAIL]
    ledger: LedgerSummary | None = None
    problem: str | None = str(unread[-1].value.get("error")) if unread else None
    if problem is None:
        ledger, problem = read_ledger(journal.folder)
    load = [(e.t_invoke, e.t_complete) for e in events if e.kind == "load.saturated"]
    host = [
        HostSpan(e.t_invoke, e.t_complete, float(e.value["busy"]), int(e.value["cores"]))
        for e in events
        if e.kind == "host.saturated"
    ]
    gaps = _gaps(promql, events, moments) + _latency_gaps(promql, load, moments)
    drained = any(e.kind == "drain" and e.outcome is Outcome.OK for e in events)
    lacks = experiment.topology.lacks
    effects = [Effect.of_event(e) for e in events if e.kind == "fault.effect"]
    return Evidence(promql, dict(moments), ledger, drained, gaps, lacks, problem, host, effects)


def save_series(ctx: RunContext, promql: PromQL) -> None:
    """The key series of the run, from the load's start (less a lead) to the drain's end."""
    start = ctx.moments.get("load.start")
    if start is None:
        return
    topology = ctx.experiment.topology
    end = ctx.moments.get("end", time.time())
    ctx.charts = [
        *charts.fetch(
            promql, panels.for_target(topology.name), topology.name, topology.queue,
            start - charts.LEAD_S, end,
        ),
        charts.unseen(ctx.run_dir, start - charts.LEAD_S, end),
    ]  # fmt: skip
    charts.save(ctx.run_dir, ctx.charts)


def _scrape_gaps(ctx: RunContext, promql: PromQL) -> list[Gap]:
    """Holes in the metrics of a target no fault took down; each is journaled."""
    gaps = _gaps(promql, ctx.log.events, ctx.moments)
    for gap in gaps:
        metrics = {"metrics": sorted(gap.metrics)}
        ctx.log.record(
            Event("observe.gap", gap.instance, gap.start, gap.end, Outcome.FAIL, metrics)
        )
    return gaps


def _gaps(promql: PromQL, events: Sequence[Event], moments: Mapping[str, float]) -> list[Gap]:
    try:
        excused = meant_down(events, moments, RESTART_GRACE_S)
        return find_gaps(promql, moments["load.start"], moments["end"], excused)
    except PromQLError:
        return []  # Prometheus itself is gone: every check that needs it is inconclusive anyway


def _saturation(ctx: RunContext, promql: PromQL) -> list[Gap]:
    """Stretches when Locust saturated its core: the checks on its latency are inconclusive."""
    spans = ctx.footprint.saturated
    if not spans:
        return []
    seconds = sum(end - start for start, end in spans)
    ctx.say(f"[yellow]Locust {WHY_SATURATED} for {seconds:.0f}s[/yellow]")
    for start, end in spans:
        ctx.log.record(Event("load.saturated", "load", start, end, Outcome.FAIL, {}))
    return _latency_gaps(promql, spans, ctx.moments)


def _delayed_sends(ctx: RunContext, promql: PromQL) -> None:
    """The open model's sends that waited for room in flight: the offered rate fell behind its
    schedule then (their latency, counted from when they were due, says by how much)."""
    # Over the raw samples: the load's series went stale when Locust exited, before the drain.
    span = max(1, math.ceil(ctx.moments["end"] - ctx.moments["load.start"]))
    query = f"sum(max_over_time(harness_load_sends_delayed_total[{span}s]))"
    try:
        samples = promql.instant(query, at=ctx.moments["end"])
    except PromQLError:
        return
    delayed = int(samples[0].value) if samples else 0
    if delayed <= 0:
        return
    cap = ctx.experiment.spec.load.in_flight_cap
    ctx.log.now("load.delayed", "load", Outcome.FAIL, sends=delayed, max_in_flight=cap)
    ctx.say(f"[yellow]{delayed} sends waited for one of the {cap} allowed in flight: the load "
            "fell behind its schedule (load.max_in_flight)[/yellow]")  # fmt: skip


def _latency_gaps(
    promql: PromQL, spans: Sequence[tuple[float, float]], moments: Mapping[str, float]
) -> list[Gap]:
    if not spans:
        return []
    try:
        return saturation_gaps(promql, spans, moments["load.start"], moments["end"])
    except PromQLError:
        return []


def _host_saturation(ctx: RunContext) -> list[HostSpan]:
    """Stretches when the host's whole CPU was busy: the timing checks over them say so."""
    spans = ctx.footprint.host.spans
    if not spans:
        return []
    seconds = sum(span.end - span.start for span in spans)
    ctx.say(
        f"[yellow]the host's CPU was saturated for {seconds:.0f}s ({spans[0].cores_busy}): "
        "timing checks over that time say so[/yellow]"
    )
    for span in spans:
        value = {"busy": span.busy, "cores": span.cores}
        ctx.log.record(Event("host.saturated", "host", span.start, span.end, Outcome.FAIL, value))
    return spans


def journal(
    ctx: RunContext,
    checks: list[CheckResult],
    error: HarnessError | None,
    overrides: tuple[str, ...],
    control: Journal | None = None,
) -> Journal:
    ended = time.time()
    verdict, reason = run_verdict((c.verdict for c in checks), error, ctx.load_failure)
    experiment = ctx.experiment
    return Journal(
        run_id=ctx.run_id,
        run_dir=str(ctx.run_dir),
        experiment=experiment.name,
        verdict=verdict,
        checks=tuple(checks),
        reason=None if reason is None else secrets.text(reason),
        experiment_file=str(experiment.file),
        target=experiment.topology.name,
        deployer=experiment.topology.deployer,
        observers=experiment.topology.observers,
        target_file=str(experiment.topology_file),
        overrides=tuple(secrets.assignment(o) for o in overrides),
        seed=ctx.seed,
        started_at=_iso(ctx.started_at),
        ended_at=_iso(ended),
        duration_s=round(ended - ctx.started_at, 3),
        moments={k: round(v, 3) for k, v in ctx.moments.items()},
        timeline=tuple(ctx.log.events),
        ledger=ctx.ledger,
        load=experiment.spec.load.model_dump(mode="json")
        | {"model": experiment.spec.load.arrivals}
        | ({"capacity": experiment.capacity.to_json()} if experiment.capacity else {}),
        components=ctx.component_record(),
        harness_cpu_s=round(own_cpu_s(), 3),
        cleanup_errors=tuple(ctx.cleanup_errors),
        faults_skipped=ctx.faults_skipped,
        control=None if control is None else ControlLink.of(control, checks),
    )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
