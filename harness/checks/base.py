"""What a check is judged on, what it yields, and the dispatch from a check spec to its kind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.ledger import LedgerSummary
from harness.observe.footprint import HostSpan
from harness.observe.gaps import IDENTIFIER, Gap
from harness.observe.promql import PromQL
from harness.spec import (
    Check,
    LedgerCheck,
    RecoveryCheck,
    SteadyState,
    ThresholdCheck,
    WindowCheck,
)
from harness.units import Moment
from harness.verdict import Verdict


@dataclass(frozen=True)
class Evidence:
    """Everything checks read: Prometheus, the moments the journal recorded, the ledger."""

    promql: PromQL | None
    moments: Mapping[str, float]
    ledger: LedgerSummary | None
    drained: bool = True  # False: messages may still be on their way, so the ledger is unsure
    gaps: Sequence[Gap] = ()
    lacks: Mapping[str, str] = field(default_factory=dict)  # the target's: metric → why
    ledger_problem: str | None = None  # why there is no ledger, when its source failed
    saturated: Sequence[HostSpan] = ()  # when the host's CPU was saturated

    def time(self, moment: Moment) -> float:
        if moment.anchor not in self.moments:
            raise Unmeasurable(f"{moment.anchor} never happened in this run")
        return self.moments[moment.anchor] + moment.offset_s

    def prometheus_for(self, expr: str) -> PromQL:
        """Prometheus, to ask ``expr`` of; unless a metric it reads has a hole in the run."""
        for metric in sorted(set(IDENTIFIER.findall(expr)) & set(self.lacks)):
            raise NotApplicable(f"the target has no {metric}: {self.lacks[metric]}")
        if self.promql is None:
            raise Unmeasurable("Prometheus was not available")
        for gap in self.gaps:
            if read := gap.touches(expr):
                t0 = self.moments.get("load.start", gap.start)
                raise Unmeasurable(
                    f"{gap.instance} {gap.why} from +{gap.start - t0:.0f}s to "
                    f"+{gap.end - t0:.0f}s, and this check reads its {', '.join(sorted(read))}"
                )
        return self.promql


class Unmeasurable(Exception):
    """The check could not be measured: its verdict is inconclusive, never held."""


class NotApplicable(Exception):
    """The target cannot honour the check as written: its verdict says so, and why."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    verdict: Verdict
    expected: str
    observed: str
    # Unix times the check looked at (its moment, or its window's edges), for the charts.
    at: tuple[float, ...] = ()
    note: str | None = None  # what the verdict must be read with: the host was saturated

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict.value,
            "expected": self.expected,
            "observed": self.observed,
            "at": list(self.at),
            "note": self.note,
        }


def describe_expected(check: Check) -> str:
    """What the check asks for, in the same words whatever its verdict."""
    if isinstance(check, RecoveryCheck):
        return f"{check.recovers} within {check.within:g}s of {check.after}"
    if isinstance(check, LedgerCheck):
        return f"{check.ledger} {check.expect}"
    if isinstance(check, WindowCheck):
        start, end = check.window
        return f"{check.expect} from {start} to {end}"
    return f"{check.expect} at {check.at}"


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
