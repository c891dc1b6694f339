"""What a check is: a typed, named question about a run that knows how to answer itself from
the run's evidence, and what that evidence is.

Each kind is a small pydantic model registered by its ``kind`` (as a fault kind is): its fields
are the experiment file's keys; it says what it expects, which moments it looks at (with the
key that names each), which PromQL it asks, and how it judges. The experiment's ``checks``
list is the union of the registered kinds, told apart by their keys (``claims``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from harness.faults.evidence import Effect
from harness.ledger import LedgerSummary
from harness.model import Model
from harness.observe.footprint import HostSpan
from harness.observe.gaps import IDENTIFIER, Gap
from harness.units import Condition, Moment
from harness.verdict import Verdict

if TYPE_CHECKING:
    from harness.observe.promql import PromQL


def missing_metrics(expr: str, lacks: Mapping[str, str]) -> list[str]:
    """The metrics ``expr`` reads that the target says it cannot export."""
    return sorted(set(IDENTIFIER.findall(expr)) & set(lacks))


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
    effects: Sequence[Effect] = ()  # what each fault's occurrences touched

    def time(self, moment: Moment) -> float:
        if moment.anchor not in self.moments:
            raise Unmeasurable(f"{moment.anchor} never happened in this run")
        return self.moments[moment.anchor] + moment.offset_s

    def prometheus_for(self, expr: str) -> PromQL:
        """Prometheus, to ask ``expr`` of; unless a metric it reads has a hole in the run."""
        for metric in missing_metrics(expr, self.lacks):
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


class Check(Model):
    """A check kind: its file's fields, and how it is judged on a run's evidence."""

    kind: ClassVar[str]

    name: str

    @classmethod
    def claims(cls, keys: Set[str]) -> int:
        """How surely a mapping with ``keys`` is of this kind: 0 not at all; the kind that
        claims it most surely reads it (the key that only one kind has beats ``query``)."""
        raise NotImplementedError

    def judge(self, evidence: Evidence) -> tuple[Verdict, str]:
        """The verdict and what was observed; raises Unmeasurable or NotApplicable."""
        raise NotImplementedError

    def expected(self) -> str:
        """What the check asks for, in the same words whatever its verdict."""
        raise NotImplementedError

    def looks_at(self) -> tuple[tuple[str, Moment], ...]:
        """The moments it looks at, each with the key of the file that names it."""
        return ()

    def queries(self) -> tuple[tuple[str, str], ...]:
        """The PromQL it asks, each with the key of the file that holds it."""
        return ()

    def span(self, evidence: Evidence) -> tuple[float, float] | None:
        """The stretch of time its verdict depends on (for a saturated host), if any."""
        times = [evidence.time(moment) for _, moment in self.looks_at()]
        return (min(times), max(times)) if times else None


@runtime_checkable
class Awaited(Protocol):
    """A check the run waits for before it ends: until its condition holds or its window
    closes (a recovery whose condition need not be the drain's)."""

    def awaits(self, moments: Mapping[str, float]) -> tuple[Condition, float] | None:
        """The condition, and the unix time its window closes; None if it has no window in
        this run (its moment never came)."""


CHECKS: dict[str, type[Check]] = {}

C = TypeVar("C", bound=type[Check])


def register(cls: C) -> C:
    """Make a check kind usable in experiment files."""
    CHECKS[cls.kind] = cls
    return cls


def kind_of(value: Any) -> str | None:
    """Which registered kind a check's mapping is (pydantic's discriminator)."""
    if not isinstance(value, dict):
        return None
    scores = [(cls.claims(value.keys()), cls.kind) for cls in CHECKS.values()]
    score, kind = max(scores, key=lambda pair: pair[0], default=(0, None))
    return kind if score > 0 else None
