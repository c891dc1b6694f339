"""Network faults: Toxiproxy toxics on the proxy of one link, and the proxy disabled.

Each toxic kind is one small class whose fields are Toxiproxy's own attribute names and
units; an unknown attribute is refused when the experiment loads, because Toxiproxy itself
would silently take a misspelt one as zero.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.faults.base import (
    Applied,
    Fault,
    FaultTools,
    Reach,
    Target,
    Undo,
    register,
)


class AppliedToxic(Undo):
    """A toxic on a link's proxy; heal removes it once."""


class ToxicFault(Fault):
    """A fault that is one Toxiproxy toxic; subclasses declare the toxic's attributes."""

    reach: ClassVar[Reach] = Reach.LINK
    toxic_type: ClassVar[str]

    stream: Literal["downstream", "upstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0.0, le=1.0, description="share of connections affected")

    def attributes(self) -> dict[str, Any]:
        return self.model_dump(exclude={"stream", "toxicity"})

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        tools.network.add_toxic(
            target.name, label, self.toxic_type, self.stream, self.toxicity, self.attributes()
        )
        network = tools.network
        return AppliedToxic(lambda link: network.remove_toxic(link, label), (target.name,))

    def conflicts_with(self, other: Fault) -> bool:
        return isinstance(other, Partition)


@register
class Latency(ToxicFault):
    """Adds ``latency`` ms, ± ``jitter`` ms, to the data on a link: a slow network or broker."""

    kind: ClassVar[str] = "latency"
    toxic_type: ClassVar[str] = "latency"

    latency: int = Field(ge=0, description="added delay in milliseconds")
    jitter: int = Field(0, ge=0, description="random variation in milliseconds")


@register
class Bandwidth(ToxicFault):
    """Limits the link to ``rate`` KB/s: a saturated network."""

    kind: ClassVar[str] = "bandwidth"
    toxic_type: ClassVar[str] = "bandwidth"

    rate: int = Field(ge=0, description="kilobytes per second")


@register
class SlowClose(ToxicFault):
    """Delays the closing of connections by ``delay`` ms."""

    kind: ClassVar[str] = "slow_close"
    toxic_type: ClassVar[str] = "slow_close"

    delay: int = Field(ge=0, description="milliseconds")


@register
class Timeout(ToxicFault):
    """A black hole: data stops; connections close after ``timeout`` ms, or hang if 0."""

    kind: ClassVar[str] = "timeout"
    toxic_type: ClassVar[str] = "timeout"

    timeout: int = Field(0, ge=0, description="milliseconds until the connection closes; 0 never")


@register
class OneWayPartition(ToxicFault):
    """Data in one direction (``stream``) is dropped, the other flows: a one-way partition."""

    kind: ClassVar[str] = "one_way_partition"
    toxic_type: ClassVar[str] = "timeout"

    stream: Literal["downstream", "upstream"]

    def attributes(self) -> dict[str, Any]:
        return {"timeout": 0}


@register
class ResetPeer(ToxicFault):
    """Connections are reset (TCP RST) after ``timeout`` ms, or at once if 0."""

    kind: ClassVar[str] = "reset_peer"
    toxic_type: ClassVar[str] = "reset_peer"

    timeout: int = Field(0, ge=0, description="milliseconds")


@register
class LimitData(ToxicFault):
    """A connection is closed once ``bytes`` bytes have passed."""

    kind: ClassVar[str] = "limit_data"
    toxic_type: ClassVar[str] = "limit_data"

    bytes: int = Field(ge=0)


@register
class Slicer(ToxicFault):
    """Data is cut into small packets of about ``average_size`` bytes, ``delay`` µs apart."""

    kind: ClassVar[str] = "slicer"
    toxic_type: ClassVar[str] = "slicer"

    average_size: int = Field(ge=1, description="bytes")
    size_variation: int = Field(0, ge=0, description="bytes")
    delay: int = Field(0, ge=0, description="microseconds between slices")


@register
class Partition(Fault):
    """The link's proxy disabled: new connections refused, existing ones cut, both ways."""

    kind: ClassVar[str] = "partition"
    reach: ClassVar[Reach] = Reach.LINK

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        tools.network.set_enabled(target.name, False)
        network = tools.network
        return Undo(lambda link: network.set_enabled(link, True), (target.name,))

    def conflicts_with(self, other: Fault) -> bool:
        return other.reach is Reach.LINK


@register
class LinkLoss(Fault):
    """Each packet on the link's connections is dropped with this chance, both ways, where they
    meet its proxy (in Toxiproxy's container): ``packet_loss`` for one link's traffic alone."""

    kind: ClassVar[str] = "link_loss"
    reach: ClassVar[Reach] = Reach.LINK
    deployer: ClassVar[str | None] = "docker"

    loss: float = Field(gt=0, le=100, description="percent of the packets dropped, each way")

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        tools.network.lose(target.name, self.loss / 100)
        return Undo(tools.network.restore, (target.name,))
