"""Resource faults on a container: its CPU or memory limit squeezed, or busy loops beside it.

A squeeze is the engine's own update of the container's limits (its cgroup), restored at heal
to what they were; a busy loop runs inside the container, so it shares the container's
allowance as a noisy neighbour in the same pod would. All of it goes with the container, so
``harness down`` after a killed harness undoes it by removing the run's containers.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from harness.faults.base import Applied, Fault, FaultTools, Reach, Target, Undo, register
from harness.units import Size


class Squeeze(Fault):
    """A limit on the container's resources for the fault's duration."""

    reach: ClassVar[Reach] = Reach.COMPONENT
    deployer: ClassVar[str | None] = "docker"

    def limits(self) -> tuple[float | None, int | None]:
        """The cores and the bytes the replica is squeezed to (None: left as it is)."""
        raise NotImplementedError

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        cpus, memory = self.limits()
        for replica in target.replicas:
            tools.processes.limit(replica, cpus, memory)
        return Undo(tools.processes.unlimit, target.replicas)


@register
class CpuLimit(Squeeze):
    """The replica may use ``cpus`` cores at most (0.1: a tenth of one): a starved pod, a
    throttled VM; it runs, only slower."""

    kind: ClassVar[str] = "cpu_limit"

    cpus: float = Field(ge=0.01, le=1024, description="cores, such as 0.1 for a tenth of one")

    def limits(self) -> tuple[float | None, int | None]:
        return self.cpus, None


@register
class MemoryLimit(Squeeze):
    """The replica may use ``memory`` at most, with no swap: past it the kernel reclaims its
    caches, then kills it (the container's OOM killer), as a pod over its limit is killed."""

    kind: ClassVar[str] = "memory_limit"

    memory: Size

    def limits(self) -> tuple[float | None, int | None]:
        return None, self.memory


@register
class CpuStress(Fault):
    """``workers`` busy loops inside the replica's container: a noisy neighbour taking its CPU
    (within its limit, if it has one)."""

    kind: ClassVar[str] = "cpu_stress"
    reach: ClassVar[Reach] = Reach.COMPONENT
    deployer: ClassVar[str | None] = "docker"

    workers: int = Field(1, ge=1, le=64, description="busy loops, each up to one core")

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        for replica in target.replicas:
            tools.processes.stress(replica, self.workers)
        return Undo(tools.processes.unstress, target.replicas)
