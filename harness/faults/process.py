"""Process faults: signals to some replicas of a component (kill, pause, graceful restart), and
cutting a container off its peers, wholly or a share of its packets.

A broker crash is ``kill`` on the broker: its data folder stays, so it comes back with
whatever it had persisted.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from harness.faults.base import (
    Applied,
    Fault,
    FaultTools,
    Processes,
    Reach,
    Target,
    Undo,
    register,
)


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


@register
class PacketLoss(Fault):
    """A lossy network: each packet between the replica and its peers is dropped with this
    chance, both ways, inside its network namespace; TCP retransmits, so what shows is latency
    (each loss costs a retransmission timeout, 200 ms or more) and, when a retransmission is lost
    again, a request's timeout. The harness's host still reaches the replica unharmed."""

    kind: ClassVar[str] = "packet_loss"
    reach: ClassVar[Reach] = Reach.COMPONENT
    deployer: ClassVar[str | None] = "docker"

    loss: float = Field(gt=0, le=100, description="percent of the packets dropped, each way")

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        for replica in target.replicas:
            tools.processes.cut(replica, self.loss / 100)
        return Undo(tools.processes.rejoin, target.replicas)
