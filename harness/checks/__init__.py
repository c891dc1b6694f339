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
    target lacks not applicable."""
    kind, judge = KINDS[type(check)]
    try:
        verdict, observed = judge(check, evidence)
    except (Unmeasurable, PromQLError) as exc:
        verdict, observed = Verdict.INCONCLUSIVE, str(exc)
    except NotApplicable as exc:
        verdict, observed = Verdict.NOT_APPLICABLE, str(exc)
    return CheckResult(
        check.name, kind, verdict, describe_expected(check), observed, _moments(check, evidence)
    )


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
