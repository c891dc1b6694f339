"""A target's own faults: the commands its file declares to put a fault in effect on a replica
and to undo it (Redis's ``CLIENT PAUSE``, RabbitMQ's memory alarm, a consumer group deleted).

They are not registered kinds: each target names its own (``faults:`` in its file), and the
loader makes one of these from the declaration and the timeline entry's settings. The
commands run on the harness's host, through the ``Commands`` seam, which fills in the
replica's address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Protocol

from pydantic import Field

from harness.faults.base import Applied, Fault, FaultTools, Reach, Target, Undo


class Commands(Protocol):
    """The command seam: a target's fault commands, run for one replica."""

    def run(
        self, argv: Sequence[str], replica: str, settings: Mapping[str, str], timeout_s: float
    ) -> None:
        """Fill in the replica's placeholders and ``{var:NAME}`` from ``settings``, run it on
        the harness's host and wait; raises if it fails or outlasts ``timeout_s``."""


class Declared(Fault):
    """One of the target's own faults, as its file declares it, with this entry's settings."""

    kind: ClassVar[str] = "declared"
    reach: ClassVar[Reach] = Reach.COMPONENT

    name: str
    vars: dict[str, str] = Field(default_factory=dict)
    # What to run is the target file's, not the journal's: only the name and settings are shown.
    apply_argv: tuple[str, ...] = Field(exclude=True)
    heal_argv: tuple[str, ...] = Field(exclude=True)
    timeout_s: float = Field(exclude=True)

    def apply(self, tools: FaultTools, target: Target, label: str) -> Applied:
        commands = tools.commands
        for replica in target.replicas:
            commands.run(self.apply_argv, replica, self.vars, self.timeout_s)
        return Undo(
            lambda replica: commands.run(self.heal_argv, replica, self.vars, self.timeout_s),
            target.replicas,
        )
