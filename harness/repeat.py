"""Repeated runs of one experiment variant: how often each check held, and the repeat verdict.

``harness run --repeat K`` runs each variant (a file on a target with its ``--set``s) K times
in a row. Checks are matched by name across the runs. When every run gave the same verdict,
that is the repeat verdict; when one held and another failed, it is flaky; otherwise the runs
merge as usual (``harness.verdict``). Pure: it reads finished journals and starts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.journal import CheckResult, Journal
from harness.verdict import Verdict, merge


def seeds(first: int | None, runs: int) -> list[int | None]:
    """The seeds of K runs: S, S+1, ..., S+K-1 from ``--seed S``, so a repeat is reproducible
    and its random choices still vary; without a seed, None (each run draws its own)."""
    return [None if first is None else first + i for i in range(runs)]


def repeat_verdict(verdicts: Sequence[Verdict]) -> Verdict:
    """The verdict of the runs: theirs if they agree, flaky if one held and another failed,
    else the worst of them."""
    if len(set(verdicts)) == 1:
        return verdicts[0]
    if Verdict.HELD in verdicts and Verdict.FAILED in verdicts:
        return Verdict.FLAKY
    return merge(verdicts)


@dataclass(frozen=True)
class CheckRepeat:
    """One check across the runs, one entry per run in each tuple. A run that did not judge the
    check (it aborted, or could not start) counts as inconclusive and observed None."""

    name: str
    expected: str
    verdicts: tuple[Verdict, ...]
    observed: tuple[str | None, ...]

    @property
    def verdict(self) -> Verdict:
        return repeat_verdict(self.verdicts)

    @property
    def held(self) -> int:
        return self.verdicts.count(Verdict.HELD)

    @property
    def failed(self) -> int:
        return self.verdicts.count(Verdict.FAILED)

    @property
    def not_applicable(self) -> int:
        return self.verdicts.count(Verdict.NOT_APPLICABLE)

    @property
    def inconclusive(self) -> int:
        """The runs that proved neither way: inconclusive, aborted or not judged."""
        return len(self.verdicts) - self.held - self.failed - self.not_applicable

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expected": self.expected,
            "verdict": self.verdict.value,
            "held": self.held,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "not_applicable": self.not_applicable,
            "observed": list(self.observed),
        }


@dataclass(frozen=True)
class RepeatSummary:
    """The K runs of one variant, in the order they ran."""

    experiment: str
    target: str
    verdicts: tuple[Verdict, ...]
    seeds: tuple[int | None, ...]
    run_dirs: tuple[str | None, ...]
    checks: tuple[CheckRepeat, ...]
    duration_s: float

    @property
    def runs(self) -> int:
        return len(self.verdicts)

    @property
    def held(self) -> int:
        """How many runs held as a whole."""
        return self.verdicts.count(Verdict.HELD)

    @property
    def verdict(self) -> Verdict:
        return repeat_verdict(self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "target": self.target,
            "verdict": self.verdict.value,
            "runs": self.runs,
            "held": self.held,
            "seeds": list(self.seeds),
            "run_dirs": list(self.run_dirs),
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class Unopened:
    """A run that could not even open (a missing component): no journal, and inconclusive."""

    experiment: str
    target: str
    seed: int | None
    verdict: Verdict = Verdict.INCONCLUSIVE
    checks: tuple[CheckResult, ...] = ()
    run_dir: str | None = None
    duration_s: float = 0.0


def summarize(journals: Sequence[Journal | Unopened]) -> RepeatSummary:
    """The K runs of one variant judged together; a run that could not even open is
    ``Unopened``."""
    if not journals:
        raise ValueError("a repeat summary needs at least one run")
    judged = [{c.name: c for c in j.checks} for j in journals]
    names = dict.fromkeys(name for by_name in judged for name in by_name)
    checks = []
    for name in names:
        found = [by_name.get(name) for by_name in judged]
        expected = next(c.expected for c in found if c is not None)
        checks.append(
            CheckRepeat(
                name,
                expected,
                tuple(Verdict.INCONCLUSIVE if c is None else c.verdict for c in found),
                tuple(None if c is None else c.observed for c in found),
            )
        )
    first = journals[0]
    return RepeatSummary(
        experiment=first.experiment,
        target=first.target,
        verdicts=tuple(j.verdict for j in journals),
        seeds=tuple(j.seed for j in journals),
        run_dirs=tuple(j.run_dir for j in journals),
        checks=tuple(checks),
        duration_s=sum(j.duration_s for j in journals),
    )
