"""PromQL checks: a threshold at a moment, a threshold over a window, a condition true at least
once in a window, recovery within a time."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import ClassVar

from pydantic import Field, model_validator

from harness.checks.base import Check, Evidence, Unmeasurable, register
from harness.observe.promql import Series, describe
from harness.units import (
    Condition,
    ConditionField,
    Duration,
    Expectation,
    ExpectationField,
    Moment,
    MomentField,
)
from harness.verdict import Verdict

END = Moment("end")
# A key only one kind has says more about a check's kind than ``query``, which two share.
SURE, LIKELY, ONLY_QUERY = 3, 2, 1


def _number(value: float) -> str:
    return f"{value:.4g}"


@register
class ThresholdCheck(Check):
    """The query's value at one moment satisfies ``expect``."""

    kind: ClassVar[str] = "threshold"

    query: str
    at: MomentField
    expect: ExpectationField

    @classmethod
    def claims(cls, keys: Set[str]) -> int:
        return ONLY_QUERY if "query" in keys else 0

    def expected(self) -> str:
        return f"{self.expect} at {self.at}"

    def looks_at(self) -> tuple[tuple[str, Moment], ...]:
        return (("at", self.at),)

    def queries(self) -> tuple[tuple[str, str], ...]:
        return (("query", self.query),)

    def judge(self, evidence: Evidence) -> tuple[Verdict, str]:
        at = evidence.time(self.at)
        samples = evidence.prometheus_for(self.query).instant(self.query, at)
        if not samples:
            raise Unmeasurable(f"no data at {self.at}")
        failing = [s for s in samples if not self.expect.holds(s.value)]
        shown = failing or samples
        observed = ", ".join(f"{describe(s.labels)}{_number(s.value)}" for s in shown[:3])
        if len(shown) > 3:
            observed += f" and {len(shown) - 3} more"
        return (Verdict.FAILED if failing else Verdict.HELD), observed


class _Windowed(Check):
    """A check over a window of the run: ``during`` a span, or ``from`` one moment ``to``
    another."""

    during: str | None = Field(None, description="a span: fault, load or a fault's name")
    from_: MomentField | None = Field(None, alias="from")
    to: MomentField | None = None

    @model_validator(mode="after")
    def _window(self) -> _Windowed:
        edges = (self.from_ is not None) + (self.to is not None)
        if (self.during is None and edges != 2) or (self.during is not None and edges):
            raise ValueError("give either 'during: <span>' or both 'from' and 'to'")
        return self

    @property
    def window(self) -> tuple[Moment, Moment]:
        if self.during is not None:
            return Moment(f"{self.during}.start"), Moment(f"{self.during}.end")
        assert self.from_ is not None and self.to is not None
        return self.from_, self.to

    def looks_at(self) -> tuple[tuple[str, Moment], ...]:
        keys = ("during", "during") if self.during is not None else ("from", "to")
        return tuple(zip(keys, self.window, strict=True))

    def samples(self, evidence: Evidence, query: str) -> tuple[list[Series], float]:
        """The query's series over the window (a sample a second), and when the load began
        (the origin of the ``+12s`` the verdicts say); Unmeasurable when there are none."""
        start_moment, end_moment = self.window
        start, end = evidence.time(start_moment), evidence.time(end_moment)
        if start >= end:
            raise Unmeasurable(f"the window is empty: {start_moment} is not before {end_moment}")
        series = evidence.prometheus_for(query).range(query, start, end)
        if not series:
            raise Unmeasurable(f"no data from {start_moment} to {end_moment}")
        return series, evidence.moments.get("load.start", start)


@register
class WindowCheck(_Windowed):
    """Every sample of the query over a window satisfies ``expect``."""

    kind: ClassVar[str] = "window"

    query: str
    expect: ExpectationField

    @classmethod
    def claims(cls, keys: Set[str]) -> int:
        return LIKELY if "query" in keys and {"during", "from", "to"} & keys else 0

    def expected(self) -> str:
        start, end = self.window
        return f"{self.expect} from {start} to {end}"

    def queries(self) -> tuple[tuple[str, str], ...]:
        return (("query", self.query),)

    def judge(self, evidence: Evidence) -> tuple[Verdict, str]:
        series, t0 = self.samples(evidence, self.query)
        expect = self.expect
        breaches = [(t, v, s.labels) for s in series for t, v in s.points if not expect.holds(v)]
        values = [v for s in series for _, v in s.points]
        if breaches:
            # The first breach says when; the worst (furthest past the bound) says by how much.
            first = breaches[0]
            worst = max(breaches, key=lambda b: abs(b[1] - expect.bound))
            shown = [first] if worst[1] == first[1] else [first, worst]
            said = [f"{describe(labels)}{_number(v)} at +{t - t0:.0f}s" for t, v, labels in shown]
            observed = ", worst ".join(said) + f" ({len(breaches)} of {len(values)} samples breach)"
            return Verdict.FAILED, observed
        observed = f"{_number(min(values))} to {_number(max(values))} over {len(values)} samples"
        return Verdict.HELD, observed


@register
class SometimesCheck(_Windowed):
    """The condition is true at least once over a window (in some series, at some sample):
    evidence that something happened (the fault made the backlog grow, a survivor claimed
    work) wherever in the window it fell, where a threshold at one moment depends on when that
    moment came."""

    kind: ClassVar[str] = "sometimes"

    sometimes: ConditionField

    @classmethod
    def claims(cls, keys: Set[str]) -> int:
        return SURE if "sometimes" in keys else 0

    def expected(self) -> str:
        start, end = self.window
        return f"{self.sometimes} at least once from {start} to {end}"

    def queries(self) -> tuple[tuple[str, str], ...]:
        return (("sometimes", self.sometimes.expr),)

    def judge(self, evidence: Evidence) -> tuple[Verdict, str]:
        series, t0 = self.samples(evidence, self.sometimes.expr)
        expect = self.sometimes.expectation
        points = sorted((t, v, s.labels) for s in series for t, v in s.points)
        met = next(((t, v, labels) for t, v, labels in points if expect.holds(v)), None)

        def said(point: tuple[float, float, dict[str, str]]) -> str:
            t, v, labels = point
            return f"{describe(labels)}{_number(v)} at +{t - t0:.0f}s"

        if met is None:
            nearest = min(points, key=lambda p: abs(p[1] - expect.bound))
            return Verdict.FAILED, f"never, over {len(points)} samples; nearest {said(nearest)}"
        # The first sample that met it says when; the furthest past the bound, by how much.
        beyond = {">": 1, ">=": 1, "<": -1, "<=": -1}.get(expect.op)
        if beyond is None:
            return Verdict.HELD, said(met)
        peak = max(points, key=lambda p: beyond * p[1])
        return Verdict.HELD, said(met) if peak[1] == met[1] else f"{said(met)}, peak {said(peak)}"


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


@register
class RecoveryCheck(Check):
    """After ``after``, the condition becomes true within ``within`` and keeps holding."""

    kind: ClassVar[str] = "recovery"

    recovers: ConditionField
    after: MomentField
    within: Duration

    @classmethod
    def claims(cls, keys: Set[str]) -> int:
        return SURE if "recovers" in keys else 0

    def expected(self) -> str:
        return f"{self.recovers} within {self.within:g}s of {self.after}"

    def looks_at(self) -> tuple[tuple[str, Moment], ...]:
        return (("after", self.after),)

    def queries(self) -> tuple[tuple[str, str], ...]:
        return (("recovers", self.recovers.expr),)

    def span(self, evidence: Evidence) -> tuple[float, float] | None:
        after = evidence.time(self.after)
        return after, after + self.within

    def awaits(self, moments: Mapping[str, float]) -> tuple[Condition, float] | None:
        if self.after.anchor not in moments:
            return None
        return self.recovers, moments[self.after.anchor] + self.after.offset_s + self.within

    def judge(self, evidence: Evidence) -> tuple[Verdict, str]:
        after, end = evidence.time(self.after), evidence.time(END)
        if after >= end:
            raise Unmeasurable(f"{self.after} is not before the end of the run")
        expr = self.recovers.expr
        series = evidence.prometheus_for(expr).range(expr, after, end)
        if not series:
            raise Unmeasurable(f"no data for {expr} after {self.after}")
        took = recovery_time(series, self.recovers.expectation, after)
        if took is None:
            last = max((p for s in series for p in s.points), key=lambda p: p[0])
            return Verdict.FAILED, f"never recovered; {_number(last[1])} at the end of the run"
        verdict = Verdict.HELD if took <= self.within else Verdict.FAILED
        return verdict, f"recovered {took:.1f}s after {self.after}"
