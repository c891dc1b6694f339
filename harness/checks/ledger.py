"""Ledger checks: a count or a rate from the message ledger against an expectation."""

from __future__ import annotations

from collections.abc import Set
from typing import ClassVar, Literal

from harness.checks.base import Check, Evidence, Unmeasurable, register
from harness.units import ExpectationField
from harness.verdict import Verdict

SURE = 3  # only a ledger check has ``ledger``

# Why a ledger value can be missing (None in the journal).
_UNJUDGED_ORDER = (
    "no order to judge: the load sent no keys (give load.key), or the processed side was read "
    "after the drain, in no order"
)
_UNJUDGED = {
    "concurrent": "no delivery records when its processing began (the processed ledger's "
    '"start"), so overlaps cannot be told',
    **dict.fromkeys(
        ("attempts_max", "attempts_p99"),
        "this run's journal was written before deliveries were counted",
    ),
    "excess": "the target declares no output.effects, so the effects its output holds are not "
    "counted",
    "mismatched_positions": "the target declares no output.positions, so its committed "
    "positions are not read",
}


@register
class LedgerCheck(Check):
    """A count or rate from the message ledger satisfies ``expect``."""

    kind: ClassVar[str] = "ledger"

    ledger: Literal[
        "lost",
        "duplicated",
        "unexpected",
        "recovered",
        "dead_lettered",
        "delayed",
        "pending",
        "reordered",
        "skipped",
        "max_gap",
        "attempts_max",
        "attempts_p99",
        "concurrent",
        "excess",
        "mismatched_positions",
        "acknowledged",
        "processed",
        "indeterminate",
        "duplicate_rate",
        "loss_rate",
    ]
    expect: ExpectationField

    @classmethod
    def claims(cls, keys: Set[str]) -> int:
        return SURE if "ledger" in keys else 0

    def expected(self) -> str:
        return f"{self.ledger} {self.expect}"

    def judge(self, evidence: Evidence) -> tuple[Verdict, str]:
        summary = evidence.ledger
        if summary is None:
            raise Unmeasurable(evidence.ledger_problem or "no ledger was recorded")
        if not evidence.drained:
            raise Unmeasurable("the backlog did not drain, so messages may still be on their way")
        if summary.acknowledged == 0:
            raise Unmeasurable("no message was acknowledged, so the ledger proves nothing")
        value = summary.value(self.ledger)
        if value is None:
            raise Unmeasurable(_UNJUDGED.get(self.ledger, _UNJUDGED_ORDER))
        holds = self.expect.holds(value)
        observed = (
            f"{value:.4g}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"
        )
        examples = summary.examples.get(self.ledger)
        if examples and not holds:
            observed += f" (e.g. {', '.join(examples[:3])})"
        return (Verdict.HELD if holds else Verdict.FAILED), observed
