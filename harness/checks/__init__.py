"""Checks: each kind of check evaluated on the run's evidence, into a verdict with numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.checks import ledger, promql
from harness.checks.base import (
    CheckResult,
    Evidence,
    NotApplicable,
    Unmeasurable,
    describe_expected,
    steady_state_checks,
)
from harness.observe.footprint import describe_saturation
from harness.observe.promql import PromQLError
from harness.spec import Check, LedgerCheck, RecoveryCheck, ThresholdCheck, WindowCheck
from harness.units import Moment
from harness.verdict import Verdict

__all__ = ["CheckResult", "Evidence", "evaluate", "steady_state_checks"]

KINDS: dict[type[Any], tuple[str, Callable[[Any, Evidence], tuple[Verdict, str]]]] = {
    ThresholdCheck: ("threshold", promql.threshold),
    WindowCheck: ("window", promql.window),
    RecoveryCheck: ("recovery", promql.recovery),
    LedgerCheck: ("ledger", ledger.ledger),
}


def evaluate(check: Check, evidence: Evidence) -> CheckResult:
    """Judge one check; no data or an unreachable source makes it inconclusive, a metric the
    target lacks not applicable, a failure while the host's CPU was saturated inconclusive."""
    kind, judge = KINDS[type(check)]
    note = None
    try:
        verdict, observed = judge(check, evidence)
        verdict, note = _on_saturated_host(verdict, _looked_at(check, evidence), evidence)
    except (Unmeasurable, PromQLError) as exc:
        verdict, observed = Verdict.INCONCLUSIVE, str(exc)
    except NotApplicable as exc:
        verdict, observed = Verdict.NOT_APPLICABLE, str(exc)
    return CheckResult(
        check.name,
        kind,
        verdict,
        describe_expected(check),
        observed,
        _moments(check, evidence),
        note,
    )


def _on_saturated_host(
    verdict: Verdict, looked: tuple[float, float] | None, evidence: Evidence
) -> tuple[Verdict, str | None]:
    """A timing check that looked while the host's CPU was saturated: a failure becomes
    inconclusive (the machine may be why), a hold stays held; the note says which stretch."""
    if looked is None:
        return verdict, None
    start, end = looked
    spans = [s for s in evidence.saturated if s.start <= end and s.end >= start]
    if not spans:
        return verdict, None
    t0 = evidence.moments.get("load.start", spans[0].start)
    where = "at this check's moment" if start == end else "inside this check's window"
    fact = f"{describe_saturation(spans, t0)}, {where}"
    if verdict is Verdict.FAILED:
        return Verdict.INCONCLUSIVE, f"{fact}: the machine, not the system, may be why it failed"
    return verdict, fact


def _looked_at(check: Check, evidence: Evidence) -> tuple[float, float] | None:
    """The time a timing check judged (its moment, its window, or its recovery's window from
    ``after`` to ``after + within``); none for a ledger check, which is not about time."""
    if isinstance(check, ThresholdCheck):
        at = evidence.time(check.at)
        return at, at
    if isinstance(check, WindowCheck):
        start, end = check.window
        return evidence.time(start), evidence.time(end)
    if isinstance(check, RecoveryCheck):
        after = evidence.time(check.after)
        return after, after + check.within
    return None


def _moments(check: Check, evidence: Evidence) -> tuple[float, ...]:
    """When the check looks: its moment, or the edges of its window; none for the ledger."""
    moments: tuple[Moment, ...]
    if isinstance(check, ThresholdCheck):
        moments = (check.at,)
    elif isinstance(check, WindowCheck):
        moments = check.window
    elif isinstance(check, RecoveryCheck):
        moments = (check.after,)
    else:
        return ()
    try:
        return tuple(round(evidence.time(moment), 3) for moment in moments)
    except Unmeasurable:
        return ()
