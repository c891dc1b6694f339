"""The check catalogue: every kind registers itself on import; ``evaluate`` judges any of them on
the run's evidence, into a verdict with numbers.

``AnyCheck`` is the union of the registered kinds as an experiment file's ``checks`` reads it,
each told apart by its keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Discriminator, Tag

from harness.checks import ledger, promql
from harness.checks.base import (
    CHECKS,
    Awaited,
    Check,
    Evidence,
    NotApplicable,
    Unmeasurable,
    kind_of,
    missing_metrics,
)
from harness.checks.ledger import LedgerCheck
from harness.checks.promql import RecoveryCheck, SometimesCheck, ThresholdCheck, WindowCheck
from harness.journal import CheckResult
from harness.observe.footprint import describe_saturation
from harness.observe.promql import PromQLError
from harness.verdict import Verdict

__all__ = [
    "CHECKS",
    "CHECK_TAGS",
    "AnyCheck",
    "Awaited",
    "Check",
    "CheckResult",
    "Evidence",
    "LedgerCheck",
    "RecoveryCheck",
    "SometimesCheck",
    "ThresholdCheck",
    "WindowCheck",
    "evaluate",
    "ledger",
    "missing_metrics",
    "promql",
]

CHECK_TAGS = frozenset(CHECKS)

if TYPE_CHECKING:
    AnyCheck = Check
else:
    AnyCheck = Annotated[
        Union[tuple(Annotated[kind, Tag(kind.kind)] for kind in CHECKS.values())],  # noqa: UP007
        Discriminator(
            kind_of,
            custom_error_type="check_kind",
            custom_error_message="a check needs 'query' (with 'at', or 'during'/'from'+'to'), "
            "'sometimes', 'recovers' or 'ledger'",
        ),
    ]


def evaluate(check: Check, evidence: Evidence) -> CheckResult:
    """Judge one check; no data or an unreachable source makes it inconclusive, a metric the
    target lacks not applicable, a failure while the host's CPU was saturated inconclusive."""
    note = None
    try:
        verdict, observed = check.judge(evidence)
        verdict, note = _on_saturated_host(verdict, check.span(evidence), evidence)
    except (Unmeasurable, PromQLError) as exc:
        verdict, observed = Verdict.INCONCLUSIVE, str(exc)
    except NotApplicable as exc:
        verdict, observed = Verdict.NOT_APPLICABLE, str(exc)
    return CheckResult(
        check.name, check.kind, verdict, check.expected(), observed, _moments(check, evidence), note
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


def _moments(check: Check, evidence: Evidence) -> tuple[float, ...]:
    """When the check looks, for the charts: its moments' times, or none it cannot place."""
    try:
        return tuple(round(evidence.time(moment), 3) for _, moment in check.looks_at())
    except Unmeasurable:
        return ()
