"""The timeline: when each fault is applied and healed, and the scheduler that does it on time.

``plan`` is pure, so the order of a run's faults is testable without running anything. The
scheduler journals every apply and heal with the real time it was invoked and completed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from harness.faults import Applied, FaultTools
from harness.journal import EventLog, Outcome
from harness.spec import FaultStep


class Action(Enum):
    APPLY = "apply"
    HEAL = "heal"


@dataclass(frozen=True, order=True)
class Scheduled:
    """One action at ``t_s`` seconds after load start; heals sort before applies at a tie."""

    t_s: float
    order: int
    action: Action = field(compare=False)
    step: FaultStep = field(compare=False)


def plan(steps: Sequence[FaultStep]) -> list[Scheduled]:
    actions = []
    for step in steps:
        actions.append(Scheduled(step.at_s, 1, Action.APPLY, step))
        actions.append(Scheduled(step.at_s + step.for_s, 0, Action.HEAL, step))
    return sorted(actions)


class Scheduler:
    """Applies and heals faults at their planned times, relative to a monotonic start."""

    def __init__(self, steps: Sequence[FaultStep], tools: FaultTools, log: EventLog) -> None:
        self.pending = plan(steps)
        self._steps = {step.label: step for step in steps}
        self.tools = tools
        self.log = log
        self.applied: dict[str, Applied] = {}
        self.start_monotonic = 0.0

    def start(self) -> None:
        self.start_monotonic = time.monotonic()

    def next_due(self) -> float | None:
        """Monotonic time of the next action, or None when all are done."""
        return self.start_monotonic + self.pending[0].t_s if self.pending else None

    def run_due(self) -> None:
        while self.pending and time.monotonic() >= self.start_monotonic + self.pending[0].t_s:
            item = self.pending.pop(0)
            lateness = time.monotonic() - (self.start_monotonic + item.t_s)
            if item.action is Action.APPLY:
                self._apply(item.step, lateness)
            else:
                self._heal(item.step, lateness)

    def _apply(self, step: FaultStep, lateness: float) -> None:
        t_invoke = time.time()
        value = {"fault": step.kind, "label": step.label, **step.fault.model_dump()}
        try:
            self.applied[step.label] = step.fault.apply(self.tools, step.target, step.label)
        except Exception as exc:  # a fault that cannot be applied is journaled, not fatal
            self.log.now(
                "fault.apply", step.target, Outcome.FAIL, t_invoke, error=str(exc), **value
            )
            return
        self.log.now("fault.apply", step.target, Outcome.OK, t_invoke, late_s=lateness, **value)

    def _heal(self, step: FaultStep, lateness: float | None) -> None:
        applied = self.applied.pop(step.label, None)
        if applied is None:
            return
        t_invoke = time.time()
        value = {"fault": step.kind, "label": step.label}
        try:
            applied.heal()
        except Exception as exc:  # keep healing the others; teardown's reset is the backstop
            self.log.now("fault.heal", step.target, Outcome.FAIL, t_invoke, error=str(exc), **value)
            return
        extra = {} if lateness is None else {"late_s": lateness}
        self.log.now("fault.heal", step.target, Outcome.OK, t_invoke, **value, **extra)

    def heal_all(self) -> None:
        """Heal whatever is still in effect (teardown, abort); planned heals are dropped."""
        self.pending = []
        for label in list(self.applied):
            step = self._steps[label]
            self._heal(step, None)
