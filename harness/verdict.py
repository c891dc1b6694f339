"""Verdicts, for one check and for a whole run, and how several merge into one.

Merge priority, worst first (as Jepsen's ``valid-priorities``)::

    aborted > failed > flaky > inconclusive > held

A check the target cannot honour (it lacks a metric the check reads) is not applicable: it says
why, and it is left out of the merge. A run with no checks evaluated (or only ones not
applicable) is inconclusive, never held. The exit code a CI pipeline sees
follows the merged verdict: held 0, failed 1, inconclusive 2, aborted 2, flaky 4.

A run's verdict comes from its checks unless the run itself went wrong (``run_verdict``): a
run stopped by a signal or an abort condition is aborted; one the harness could not carry out,
or whose load generator died, is inconclusive (fail closed: every check depends on the load).

Flaky is never one run's verdict: ``harness run --repeat K`` gives it to a check (or to an
experiment) that held in some of the K runs and failed in others (``harness.repeat``). It ranks
below failed, since a check that failed every time is the clearer defect, and above
inconclusive, since a failure was seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from harness.errors import Aborted, HarnessError, Interrupted


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


def run_verdict(
    checks: Iterable[Verdict], error: HarnessError | None, load_failure: str | None
) -> tuple[Verdict, str | None]:
    """A run's verdict and, when it is not its checks', the reason."""
    if isinstance(error, Interrupted | Aborted):
        return Verdict.ABORTED, str(error)
    if error is not None:
        return Verdict.INCONCLUSIVE, str(error)
    if load_failure is not None:
        return Verdict.INCONCLUSIVE, load_failure
    return merge(checks), None
