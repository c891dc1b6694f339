"""Verdicts, for one check and for a whole run, and how several merge into one.

Merge priority, worst first (as Jepsen's ``valid-priorities``)::

    aborted > failed > flaky > inconclusive > held

A check the target cannot honour (it lacks a metric the check reads) is not applicable: it says
why, and it is left out of the merge. A run with no checks evaluated (or only ones not
applicable) is inconclusive, never held. The exit code a CI pipeline sees
follows the merged verdict: held 0, failed 1, inconclusive 2, aborted 2, flaky 4.

Flaky is never one run's verdict: ``harness run --repeat K`` gives it to a check (or to an
experiment) that held in some of the K runs and failed in others (``harness.repeat``). It ranks
below failed, since a check that failed every time is the clearer defect, and above
inconclusive, since a failure was seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Verdict(Enum):
    HELD = "held"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ABORTED = "aborted"
    NOT_APPLICABLE = "not-applicable"
    FLAKY = "flaky"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_PRIORITY = [Verdict.ABORTED, Verdict.FAILED, Verdict.FLAKY, Verdict.INCONCLUSIVE, Verdict.HELD]
_EXIT_CODES = {
    Verdict.HELD: 0,
    Verdict.FAILED: 1,
    Verdict.INCONCLUSIVE: 2,
    Verdict.ABORTED: 2,
    Verdict.NOT_APPLICABLE: 0,  # never a run's verdict: merge leaves it out
    Verdict.FLAKY: 4,
}


def merge(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst of ``verdicts`` by the priority above; nothing to merge is inconclusive."""
    present = set(verdicts) - {Verdict.NOT_APPLICABLE}
    if not present:
        return Verdict.INCONCLUSIVE
    return next(v for v in _PRIORITY if v in present)
