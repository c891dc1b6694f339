"""The timeline: when each fault is applied and healed, and the scheduler that does it on time.

``expand`` turns the experiment's entries into occurrences, making every random choice (which
link of a set, which replicas) from the run's seed, so ``--seed`` replays them. ``plan`` is
pure, so the order of a run's faults is testable without running anything. The scheduler
writes each fault to the run's state file before applying it, and journals every apply and
heal with the real time it was invoked and completed.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from harness.faults import Applied, Fault, FaultTools, Reach, Releasable, Target
from harness.journal import EventLog, Outcome
from harness.spec import Experiment
from harness.state import FaultState


@dataclass(frozen=True)
class FaultStep:
    """One occurrence of a fault: seconds after load start, for how long, on what exactly."""

    label: str  # the entry's name; every occurrence shares it, so moments span them all
    occurrence: int
    kind: str
    at_s: float
    for_s: float
    target: Target
    fault: Fault

    @property
    def key(self) -> str:
        """Unique per occurrence: the toxic's name, the handle of what heal must undo."""
        return self.label if self.occurrence == 1 else f"{self.label}-{self.occurrence}"


def expand(experiment: Experiment, rng: random.Random) -> list[FaultStep]:
    topology = experiment.topology
    steps = []
    for entry in experiment.faults:
        for n, start in enumerate(entry.starts(experiment.spec.load.duration), 1):
            name = rng.choice(entry.targets)
            replicas: tuple[str, ...] = ()
            if entry.fault.reach is Reach.COMPONENT:
                names = topology.replica_names(name)
                if entry.count is not None:
                    wanted = entry.count
                elif entry.percent is not None:
                    wanted = max(1, math.ceil(len(names) * entry.percent / 100))
                else:
                    wanted = len(names)
                replicas = tuple(sorted(rng.sample(names, wanted)))
            target = Target(name, replicas)
            steps.append(
                FaultStep(entry.label, n, entry.kind, start, entry.for_s, target, entry.fault)
            )
        rng.random()  # entries draw independently of how many occurrences came before
    return steps


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
    """Applies and heals faults at their planned times, relative to a monotonic start.

    ``skip``: a control run's; each action is journaled as ``fault.skipped`` at its time and
    nothing is applied, so the run keeps its fault moments (and windows) without the faults."""

    def __init__(
        self,
        steps: Sequence[FaultStep],
        tools: FaultTools,
        log: EventLog,
        state: FaultState,
        skip: bool = False,
    ) -> None:
        self.skip = skip
        self.pending = plan(steps)
        self._steps = {step.key: step for step in steps}
        self.tools = tools
        self.log = log
        self.state = state
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
            if self.skip:
                value = {"at": item.action.value, **_describe(item.step)}
                self.log.now("fault.skipped", item.step.target.name, Outcome.INFO, None, **value)
            elif item.action is Action.APPLY:
                self._apply(item.step, lateness)
            else:
                self._heal(item.step, lateness)

    def _apply(self, step: FaultStep, lateness: float) -> None:
        t_invoke = time.time()
        value = _describe(step) | step.fault.model_dump()
        where = {"target": step.target.name, "replicas": list(step.target.replicas)}
        self.state.write(step.key, "applying", kind=step.kind, **where)
        try:
            self.applied[step.key] = step.fault.apply(self.tools, step.target, step.key)
        except Exception as exc:  # a fault that cannot be applied is journaled, not fatal
            self.state.write(step.key, "apply failed", error=str(exc))
            self.log.now(
                "fault.apply", step.target.name, Outcome.FAIL, t_invoke, error=str(exc), **value
            )
            return
        self.log.now(
            "fault.apply", step.target.name, Outcome.OK, t_invoke, late_s=lateness, **value
        )

    def _heal(self, step: FaultStep, lateness: float | None, teardown: bool = False) -> None:
        applied = self.applied.pop(step.key, None)
        if applied is None:
            return
        t_invoke = time.time()
        value = _describe(step)
        undo = applied.release if teardown and isinstance(applied, Releasable) else applied.heal
        try:
            undo()
        except Exception as exc:  # keep healing the others; teardown's reset is the backstop
            self.state.write(step.key, "heal failed", error=str(exc))
            self.log.now(
                "fault.heal", step.target.name, Outcome.FAIL, t_invoke, error=str(exc), **value
            )
            return
        self.state.write(step.key, "healed")
        extra = {"late_s": lateness} if lateness is not None else {"at_teardown": teardown}
        self.log.now("fault.heal", step.target.name, Outcome.OK, t_invoke, **value, **extra)

    def heal_all(self) -> None:
        """At teardown: undo whatever is still in effect, newest first; planned ones are dropped."""
        self.pending = []
        for key in reversed(list(self.applied)):
            self._heal(self._steps[key], None, teardown=True)


def _describe(step: FaultStep) -> dict[str, object]:
    value: dict[str, object] = {
        "fault": step.kind,
        "label": step.label,
        "occurrence": step.occurrence,
    }
    if step.target.replicas:
        value["replicas"] = list(step.target.replicas)
    return value
