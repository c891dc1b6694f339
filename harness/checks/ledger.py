"""Ledger checks: a count or a rate from the message ledger against an expectation."""

from __future__ import annotations

from harness.checks.base import Evidence, Unmeasurable
from harness.spec import LedgerCheck
from harness.verdict import Verdict


def ledger(check: LedgerCheck, evidence: Evidence) -> tuple[Verdict, str]:
    summary = evidence.ledger
    if summary is None:
        raise Unmeasurable(evidence.ledger_problem or "no ledger was recorded")
    if not evidence.drained:
        raise Unmeasurable("the backlog did not drain, so messages may still be on their way")
    if summary.acknowledged == 0:
        raise Unmeasurable("no message was acknowledged, so the ledger proves nothing")
    value = summary.value(check.ledger)
    observed = (
        f"{value:.4g}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"
    )
    examples = summary.examples.get(check.ledger)
    if examples and not check.expect.holds(value):
        observed += f" (e.g. {', '.join(examples[:3])})"
    return (Verdict.HELD if check.expect.holds(value) else Verdict.FAILED), observed
