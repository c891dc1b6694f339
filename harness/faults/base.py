"""What a fault is: a typed, named change to the system that knows how to undo itself.

Each kind is a small pydantic model registered by name; its fields are the backend's own
attribute names (Toxiproxy's for network faults). When and where a fault happens (``at``,
``for``, the link or component) is the timeline's business, not the fault's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict


class Applied(Protocol):
    """A fault in effect."""

    def heal(self) -> None:
        """Undo the fault. Idempotent: teardown may call it again after a heal that failed."""


class Toxics(Protocol):
    """The network seam: toxics on the Toxiproxy proxy of a link."""

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


class Reach(Enum):
    """What a fault kind acts on."""

    LINK = "link"
    COMPONENT = "component"


@dataclass(frozen=True)
class FaultTools:
    """Everything a fault may act through, handed to ``apply``."""

    toxics: Toxics


class Fault(BaseModel):
    """A fault kind: typed fields, ``apply`` returns the handle that heals it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]
    reach: ClassVar[Reach]

    def apply(self, tools: FaultTools, target: str, label: str) -> Applied:
        """Put the fault in effect on ``target``; ``label`` names it uniquely in this run."""
        raise NotImplementedError


FAULTS: dict[str, type[Fault]] = {}

F = TypeVar("F", bound=type[Fault])


def register(cls: F) -> F:
    """Make a fault kind usable by its name in experiment files."""
    FAULTS[cls.kind] = cls
    return cls
