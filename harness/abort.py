"""Abort conditions: stop the experiment before it harms more than it measures.

``abort_if`` conditions are PromQL comparisons evaluated about every second while the load
runs and the backlog drains; ``time_limit`` bounds the whole run. When one fires, the run
raises ``Aborted``: teardown heals every fault and stops the load at once, and the verdict is
``aborted`` with the reason. A condition Prometheus refuses (a typo in the PromQL) aborts too,
at the first check: an experiment must not run unguarded because its guard was misspelt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from harness.errors import Aborted
from harness.observe.promql import BadQuery, PromQL, PromQLError, describe
from harness.units import Condition


class AbortWatch:
    def __init__(
        self,
        conditions: Sequence[Condition],
        promql: PromQL,
        started: float,
        time_limit_s: float,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conditions = conditions
        self.promql = promql
        self.deadline = started + time_limit_s
        self.time_limit_s = time_limit_s
        self.interval_s = interval_s
        self.clock = clock
        self.next_check = started

    def check(self) -> None:
        """Raise ``Aborted`` if the time limit passed or a condition holds; cheap when not due."""
        now = self.clock()
        if now >= self.deadline:
            raise Aborted(f"the run passed its time limit of {self.time_limit_s:g}s")
        if now < self.next_check or not self.conditions:
            return
        self.next_check = now + self.interval_s
        for condition in self.conditions:
            try:
                samples = self.promql.instant(condition.expr)
            except BadQuery as exc:  # a guard that cannot work must not let the run go unguarded
                raise Aborted(f"abort_if {condition} cannot be evaluated: {exc}") from None
            except PromQLError:
                continue  # no answer is no evidence of harm; the checks will say what is missing
            for sample in samples:
                if condition.expectation.holds(sample.value):
                    where = describe(sample.labels)
                    raise Aborted(
                        f"abort_if {condition} fired: {sample.value:g}{where and ' for ' + where}"
                    )
