"""Process faults: signals to some replicas of a component (kill, pause, graceful restart), and
cutting a container off its peers.

A broker crash is ``kill`` on the broker: its data folder stays, so it comes back with
whatever it had persisted.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from harness.faults.base import Applied, Fault, FaultTools, Processes, Reach, Target, register


@dataclass
class Undo:
    """The replicas a fault acted on; heal undoes it on each of them, once."""

    undo: Callable[[str], None]
    replicas: tuple[str, ...]
    healed: bool = field(default=False)

    def heal(self) -> None:
        if not self.healed:
            self.healed = True
            for replica in self.replicas:
                self.undo(replica)


@dataclass
class Down(Undo):
    """Replicas that were stopped; heal starts them again and waits until they are ready."""

    def release(self) -> None:
        # Teardown stops every process anyway: starting them only to stop them helps no one.
        self.healed = True


@register
class Kill(Fault):
    """SIGKILL: the replica dies mid-job, without cleanup; it is started again at heal."""

    kind: ClassVar[str] = "kill"
    reach: ClassVar[Reach] = Reach.COMPONENT

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        for replica in target.replicas:
            tools.processes.kill(replica)
        return Down(tools.processes.start, target.replicas)


@register
class Restart(Fault):
    """A graceful stop (SIGTERM) for the fault's duration, then a start: a rolling deploy."""

    kind: ClassVar[str] = "restart"
    reach: ClassVar[Reach] = Reach.COMPONENT

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        for replica in target.replicas:
            tools.processes.stop(replica)
        return Down(tools.processes.start, target.replicas)


@register
class Pause(Fault):
    """SIGSTOP for the fault's duration, then SIGCONT: a hung consumer, a long GC pause."""

    kind: ClassVar[str] = "pause"
    reach: ClassVar[Reach] = Reach.COMPONENT

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        for replica in target.replicas:
            tools.processes.send_signal(replica, signal.SIGSTOP)
        processes: Processes = tools.processes
        return Undo(lambda replica: processes.send_signal(replica, signal.SIGCONT), target.replicas)


@register
class CutOff(Fault):
    """A real partition: every packet between the replica and its peers is dropped inside its
    network namespace, so connections hang as across a dead switch; the harness still sees it."""

    kind: ClassVar[str] = "cut"
    reach: ClassVar[Reach] = Reach.COMPONENT
    deployer: ClassVar[str | None] = "docker"

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        for replica in target.replicas:
            tools.processes.cut(replica)
        return Undo(tools.processes.rejoin, target.replicas)
