"""Whether a fault took effect: the check an experiment's ``require_effect`` adds for a fault.

Not a kind an experiment writes in ``checks``: a fault that did not bite makes the run
inconclusive, never failed, because the system was not tested, not found wanting.
"""

from __future__ import annotations

from typing import ClassVar

from harness.checks.base import Check, Evidence, Unmeasurable
from harness.faults.evidence import told
from harness.verdict import Verdict


class EffectCheck(Check):
    """One of the fault's occurrences shows that it touched traffic or work (the evidence of
    ``harness.faults.evidence``)."""

    kind: ClassVar[str] = "effect"

    fault: str  # the timeline entry's label

    @classmethod
    def of(cls, label: str) -> EffectCheck:
        return cls(name=f"the fault {label} took effect", fault=label)

    def expected(self) -> str:
        return f"evidence that {self.fault} touched traffic or work"

    def judge(self, evidence: Evidence) -> tuple[Verdict, str]:
        occurrences = [e for e in evidence.effects if e.label == self.fault]
        if not occurrences:
            raise Unmeasurable(
                f"the journal records no effect of {self.fault}: it was never applied, or the "
                "run was made before faults' effects were recorded"
            )
        bit, text = told(occurrences)
        if not bit:
            raise Unmeasurable(text)
        return Verdict.HELD, text
