"""Verdicts, for one check and for a whole run, and how several merge into one.

Merge priority, worst first (as Jepsen's ``valid-priorities``)::

    aborted > failed > inconclusive > held

A check the target cannot honour (it lacks a metric the check reads) is not applicable: it says
why, and it is left out of the merge. A run with no checks evaluated (or only ones not
applicable) is inconclusive, never held. The exit code a CI pipeline sees
follows the merged verdict: held 0, failed 1, inconclusive 2, aborted 2.
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

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_PRIORITY = [Verdict.ABORTED, Verdict.FAILED, Verdict.INCONCLUSIVE, Verdict.HELD]
_EXIT_CODES = {
    Verdict.HELD: 0,
    Verdict.FAILED: 1,
    Verdict.INCONCLUSIVE: 2,
    Verdict.ABORTED: 2,
    Verdict.NOT_APPLICABLE: 0,  # never a run's verdict: merge leaves it out
}


def merge(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst of ``verdicts`` by the priority above; nothing to merge is inconclusive."""
    present = set(verdicts) - {Verdict.NOT_APPLICABLE}
    if not present:
        return Verdict.INCONCLUSIVE
    return next(v for v in _PRIORITY if v in present)
