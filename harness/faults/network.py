"""Network faults: Toxiproxy toxics on the proxy of one link."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.faults.base import Applied, Fault, FaultTools, Reach, Toxics, register


@dataclass
class AppliedToxic:
    """A toxic on a proxy; heal removes it once, later calls do nothing."""

    toxics: Toxics
    link: str
    name: str
    healed: bool = field(default=False)

    def heal(self) -> None:
        if not self.healed:
            self.toxics.remove_toxic(self.link, self.name)
            self.healed = True


class ToxicFault(Fault):
    """A fault that is one Toxiproxy toxic; subclasses declare the toxic's attributes."""

    reach: ClassVar[Reach] = Reach.LINK
    toxic_type: ClassVar[str]

    stream: Literal["downstream", "upstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0.0, le=1.0)

    def attributes(self) -> dict[str, Any]:
        return self.model_dump(exclude={"stream", "toxicity"})

    def apply(self, tools: FaultTools, target: str, label: str) -> Applied:
        tools.toxics.add_toxic(
            target, label, self.toxic_type, self.stream, self.toxicity, self.attributes()
        )
        return AppliedToxic(tools.toxics, target, label)


@register
class Latency(ToxicFault):
    """Adds ``latency`` ms, ± ``jitter`` ms, to the data on a link: a slow network or broker."""

    kind: ClassVar[str] = "latency"
    toxic_type: ClassVar[str] = "latency"

    latency: int = Field(ge=0, description="added delay in milliseconds")
    jitter: int = Field(0, ge=0, description="random variation in milliseconds")
