"""PromQL checks: a threshold at a moment, a threshold over a window, recovery within a time."""

from __future__ import annotations

from harness.checks.base import Evidence, Unmeasurable
from harness.observe.promql import Series, describe
from harness.spec import RecoveryCheck, ThresholdCheck, WindowCheck
from harness.units import Expectation, Moment
from harness.verdict import Verdict

END = Moment("end")


def _number(value: float) -> str:
    return f"{value:.4g}"


def threshold(check: ThresholdCheck, evidence: Evidence) -> tuple[Verdict, str]:
    at = evidence.time(check.at)
    samples = evidence.prometheus_for(check.query).instant(check.query, at)
    if not samples:
        raise Unmeasurable(f"no data at {check.at}")
    failing = [s for s in samples if not check.expect.holds(s.value)]
    shown = failing or samples
    observed = ", ".join(f"{describe(s.labels)}{_number(s.value)}" for s in shown[:3])
    if len(shown) > 3:
        observed += f" and {len(shown) - 3} more"
    return (Verdict.FAILED if failing else Verdict.HELD), observed


def window(check: WindowCheck, evidence: Evidence) -> tuple[Verdict, str]:
    start_moment, end_moment = check.window
    start, end = evidence.time(start_moment), evidence.time(end_moment)
    if start >= end:
        raise Unmeasurable(f"the window is empty: {start_moment} is not before {end_moment}")
    series = evidence.prometheus_for(check.query).range(check.query, start, end)
    if not series:
        raise Unmeasurable(f"no data from {start_moment} to {end_moment}")
    t0 = evidence.moments.get("load.start", start)
    breaches = [(t, v, s.labels) for s in series for t, v in s.points if not check.expect.holds(v)]
    values = [v for s in series for _, v in s.points]
    if breaches:
        # The first breach says when; the worst (furthest past the bound) says by how much.
        first = breaches[0]
        worst = max(breaches, key=lambda b: abs(b[1] - check.expect.bound))
        shown = [first] if worst[1] == first[1] else [first, worst]
        said = [f"{describe(labels)}{_number(v)} at +{t - t0:.0f}s" for t, v, labels in shown]
        observed = ", worst ".join(said) + f" ({len(breaches)} of {len(values)} samples breach)"
        return Verdict.FAILED, observed
    observed = f"{_number(min(values))} to {_number(max(values))} over {len(values)} samples"
    return Verdict.HELD, observed


def recovery_time(series: list[Series], expectation: Expectation, after: float) -> float | None:
    """Seconds from ``after`` until the condition holds and keeps holding; None if it never does.

    At each step the condition holds when every series present satisfies it.
    """
    by_time: dict[float, list[float]] = {}
    for s in series:
        for t, v in s.points:
            by_time.setdefault(t, []).append(v)
    recovered_at: float | None = None
    for t in sorted(by_time):
        if all(expectation.holds(v) for v in by_time[t]):
            recovered_at = t if recovered_at is None else recovered_at
        else:
            recovered_at = None
    return None if recovered_at is None else max(0.0, recovered_at - after)


def recovery(check: RecoveryCheck, evidence: Evidence) -> tuple[Verdict, str]:
    after, end = evidence.time(check.after), evidence.time(END)
    if after >= end:
        raise Unmeasurable(f"{check.after} is not before the end of the run")
    series = evidence.prometheus_for(check.recovers.expr).range(check.recovers.expr, after, end)
    if not series:
        raise Unmeasurable(f"no data for {check.recovers.expr} after {check.after}")
    took = recovery_time(series, check.recovers.expectation, after)
    if took is None:
        last = max((p for s in series for p in s.points), key=lambda p: p[0])
        observed = f"never recovered; {_number(last[1])} at the end of the run"
        return Verdict.FAILED, observed
    verdict = Verdict.HELD if took <= check.within else Verdict.FAILED
    return verdict, f"recovered {took:.1f}s after {check.after}"
