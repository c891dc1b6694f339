"""What a fault is: a typed, named change to the system that knows how to undo itself.

Each kind is a small pydantic model registered by name; its fields are the backend's own
attribute names (Toxiproxy's for network faults). When, where and how often a fault happens
(``at``, ``for``, ``every``, the link or component, how many replicas) is the timeline's
business, not the fault's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from harness.faults.command import Commands


class Applied(Protocol):
    """A fault in effect."""

    def heal(self) -> None:
        """Undo the fault and restore service. Idempotent: teardown may call it again."""


@dataclass
class Undo:
    """What a fault acted on (replicas, or a link); heal undoes it on each of them, once."""

    undo: Callable[[str], None]
    names: tuple[str, ...]  # the replicas, or the link
    healed: bool = field(default=False)

    def heal(self) -> None:
        if not self.healed:
            self.healed = True
            for name in self.names:
                self.undo(name)


@runtime_checkable
class Releasable(Protocol):
    """A fault whose undo at teardown differs from its heal (a killed process need not restart)."""

    def release(self) -> None:
        """Undo whatever would outlive the run, without restoring service. Idempotent."""


class Network(Protocol):
    """The network seam: toxics on, and the state of, the Toxiproxy proxy of each link."""

    def add_toxic(
        self,
        link: str,
        name: str,
        kind: str,
        stream: str,
        toxicity: float,
        attributes: dict[str, Any],
    ) -> None:
        """Add a toxic now; raises if the proxy refuses it."""

    def remove_toxic(self, link: str, name: str) -> None:
        """Remove the toxic; a toxic already gone is not an error."""

    def set_enabled(self, link: str, enabled: bool) -> None:
        """Disable (refuse and cut every connection) or enable the link's proxy."""

    def lose(self, link: str, share: float) -> None:
        """Drop this share of the packets on the link's connections; raises where it cannot."""

    def restore(self, link: str) -> None:
        """Undo ``lose``."""


class Processes(Protocol):
    """The process seam: the running replicas of the deployment, by replica name."""

    def send_signal(self, replica: str, signum: int) -> None:
        """Signal the replica's whole process group."""

    def kill(self, replica: str) -> None:
        """SIGKILL the replica and reap it."""

    def stop(self, replica: str) -> None:
        """Stop the replica gracefully (SIGTERM, then SIGKILL after a grace period)."""

    def start(self, replica: str) -> None:
        """Start a stopped replica again, as it was started first, and wait until it is ready."""

    def cut(self, replica: str, share: float = 1.0) -> None:
        """Drop this share of the packets between the replica and its peers (every one at 1.0),
        never those to and from the harness's host."""

    def rejoin(self, replica: str) -> None:
        """Undo ``cut``."""

    def limit(self, replica: str, cpus: float | None, memory: int | None) -> None:
        """Squeeze the replica to ``cpus`` cores and ``memory`` bytes (None: leave as is)."""

    def unlimit(self, replica: str) -> None:
        """Give the replica back the limits it had before ``limit``."""

    def stress(self, replica: str, workers: int) -> None:
        """Start ``workers`` busy loops beside the replica, sharing its CPU allowance."""

    def unstress(self, replica: str) -> None:
        """Stop the busy loops of ``stress``."""


class Reach(Enum):
    """What a fault kind acts on."""

    LINK = "link"
    COMPONENT = "component"


@dataclass(frozen=True)
class Target:
    """Where one occurrence of a fault acts: a link, or some replicas of a component."""

    name: str
    replicas: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaultTools:
    """Everything a fault may act through, handed to ``apply``."""

    network: Network
    processes: Processes
    commands: Commands


class Fault(BaseModel):
    """A fault kind: typed fields, ``apply`` returns the handle that heals it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]
    reach: ClassVar[Reach]
    # The deployer it needs, if only one can do it.
    deployer: ClassVar[str | None] = None

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        """Put the fault in effect on ``target``; ``label`` names it uniquely in this run."""
        raise NotImplementedError

    def conflicts_with(self, other: Fault) -> bool:
        """Whether the two cannot both be in effect on the same target at once."""
        return self.reach is Reach.COMPONENT and other.reach is Reach.COMPONENT


FAULTS: dict[str, type[Fault]] = {}

F = TypeVar("F", bound=type[Fault])


def register(cls: F) -> F:
    """Make a fault kind usable by its name in experiment files."""
    FAULTS[cls.kind] = cls
    return cls
