"""An experiment file's model: its load, its steady state, its timeline of faults and its
checks, and the experiment as loaded (with its target's model, ``harness.topology``).

Loading goes (``harness.loader``): YAML with lines (``yamlsource``) → ``--set`` overrides →
pydantic models → cross-checks between the experiment and its target (links, components,
moments). Whatever is wrong, the user gets one ``SpecError`` that names the file, the line and
the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from harness.capacity.share import CapacityShare
from harness.checks import AnyCheck
from harness.errors import SpecError
from harness.faults import Fault
from harness.load.keys import KEY_PLACEHOLDER
from harness.load.shape import Shape
from harness.model import Model
from harness.topology import NAME_PATTERN, TopologySpec
from harness.units import (
    ConditionField,
    Duration,
    ExpectationField,
    LoadRate,
)
from harness.yamlsource import Loc, Source

M = TypeVar("M", bound=BaseModel)
# A send unanswered after this long is indeterminate (Locust's network timeout).
LOAD_TIMEOUT_S = 5.0
# Each send in flight is a connection (HTTP/1.1) or a publisher's; far above a useful cap.
MAX_IN_FLIGHT = 5000


# -------------------------------------------------------------- experiment


class LoadSpec(Model):
    rate: LoadRate | None = Field(None, description="a constant rate (or give a shape)")
    shape: Shape | None = Field(
        None, description="a rate that changes: ramp, steps, spike or sine (the open model)"
    )
    duration: Duration = Field(gt=0)
    key: str | None = Field(
        None,
        min_length=1,
        description="each message's key, for the ledger's order checks: a template of {user} "
        "(the sending load user's number) and {seq} (its sequence number), either as "
        '"{seq % N}"; the default body then carries it as "key" (Kafka\'s record key)',
    )
    users: int | None = Field(None, ge=1, le=1000)
    model: Literal["closed", "open"] | None = Field(
        None,
        description="open (the default): sends leave on schedule whatever the answers, up to "
        "max_in_flight at once; closed (the default with users or a key): each user waits for "
        "an answer before its next send",
    )
    max_in_flight: int | None = Field(
        None,
        ge=1,
        le=MAX_IN_FLIGHT,
        description="the open model's most sends awaiting an answer at once; default: the "
        "sends of 5 s (the load's timeout) at the rate, at least 10",
    )
    workers: int = Field(
        0,
        ge=0,
        le=32,
        description="0: Locust in one process; N: a Locust master and N worker processes",
    )

    @model_validator(mode="after")
    def _open_model(self) -> LoadSpec:
        if (self.rate is None) == (self.shape is None):
            raise ValueError("give a rate (200/s) or a shape (ramp, steps, spike or sine)")
        if self.shape is not None and self.model == "closed":
            raise ValueError("a shape's sends follow its schedule: the model is open")
        if self.arrivals == "closed" and self.max_in_flight is not None:
            raise ValueError(
                "max_in_flight is the open model's, and users, a key or model: closed make the "
                "load closed"
            )
        if self.arrivals == "open" and self.users is not None:
            raise ValueError("users is the closed model's: the open model sends on schedule")
        if self.arrivals == "open" and self.key is not None:
            raise ValueError(
                "a keyed load is closed: the order of a key's sends is its user's, which needs "
                "each send to wait for the one before"
            )
        return self

    @property
    def arrivals(self) -> str:
        """The model of arrivals: as given, else closed for the closed model's own fields (users,
        a key) and open otherwise."""
        if self.model is not None:
            return self.model
        closed = self.shape is None and (self.users is not None or self.key is not None)
        return "closed" if closed else "open"

    @property
    def peak_rate(self) -> float:
        """The rate, or the shape's highest within the load."""
        if self.rate is not None:
            return self.rate
        assert self.shape is not None  # a rate or a shape, as the validator demands
        return self.shape.peak(self.duration)

    @property
    def in_flight_cap(self) -> int:
        """The open model's most sends in flight: given, or a whole timeout's worth."""
        default = max(10, math.ceil(self.peak_rate * LOAD_TIMEOUT_S))
        return self.max_in_flight or min(default, MAX_IN_FLIGHT)

    @model_validator(mode="after")
    def _key_template(self) -> LoadSpec:
        if self.key is not None:
            rest = KEY_PLACEHOLDER.sub("", self.key)
            if "{" in rest or "}" in rest:
                raise ValueError(
                    f"key {self.key!r}: a key's placeholders are {{user}}, {{seq}}, "
                    "{user % N} and {seq % N}"
                )
        return self


class SteadyState(Model):
    """A condition that must hold before the first fault and again once the system recovered."""

    name: str
    query: str
    expect: ExpectationField


class TimelineEntry(BaseModel):
    """A fault on the timeline; fields beyond these belong to the fault kind."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    name: str | None = Field(None, pattern=NAME_PATTERN)
    at: Duration
    for_: Duration = Field(alias="for", gt=0)
    every: Duration | None = Field(None, gt=0, description="repeat this often")
    times: int | None = Field(None, ge=1, description="how many times, with every")
    fault: str
    link: str | list[str] | None = Field(None, description="a link, or links to choose from")
    component: str | list[str] | None = None
    count: int | None = Field(None, ge=1, description="how many replicas")
    percent: float | None = Field(None, gt=0, le=100, description="what share of the replicas")
    require_effect: bool | None = Field(
        None,
        description="the run is inconclusive unless one of its occurrences shows that it took "
        "effect; default: the experiment's require_effect",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TimelineEntry:
        if self.times is not None and self.every is None:
            raise ValueError("'times' goes with 'every'")
        if self.count is not None and self.percent is not None:
            raise ValueError("give 'count' or 'percent', not both")
        return self


TIME_LIMIT_MARGIN_S = 60.0


class ExperimentSpec(Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    target: str
    deployer: Literal["local", "docker"] | None = Field(
        None, description="how its target runs for this experiment; default: the target's own"
    )
    observers: Literal["host", "docker"] | None = Field(
        None, description="where the run's Prometheus runs; default: the target's own"
    )
    overrides: dict[str, dict[str, Any]] = {}
    load: LoadSpec
    drain: Duration = Field(30.0, description="longest wait for the backlog to empty after load")
    steady_state: list[SteadyState] = []
    timeline: list[TimelineEntry] = []
    require_effect: bool = Field(
        False,
        description="every fault must show that it took effect (traffic on its link, work on "
        "its replica), or the run is inconclusive",
    )
    checks: list[AnyCheck] = Field(min_length=1)
    matrix: dict[str, list[str | int | float | bool]] = Field(
        {},
        description="run the experiment once per combination of these values: each key a "
        "--set path or target, each value a list (harness.matrix)",
    )
    abort_if: list[ConditionField] = Field(
        [], description="PromQL conditions checked every second; one that holds aborts the run"
    )
    time_limit: Duration | None = Field(
        None, description="hard limit from load start; default: load + drain + 60s"
    )

    @property
    def time_limit_s(self) -> float:
        return self.time_limit or self.load.duration + self.drain + TIME_LIMIT_MARGIN_S


# -------------------------------------------------------------- loaded whole


@dataclass(frozen=True)
class FaultEntry:
    """A validated timeline entry: what fault, when, how often, and where it may act."""

    index: int  # its place in the experiment's timeline, for messages
    label: str
    kind: str
    at_s: float
    for_s: float
    every_s: float | None
    times: int | None
    targets: tuple[str, ...]  # one is chosen per occurrence, by the run's seed
    count: int | None
    percent: float | None
    fault: Fault
    require_effect: bool = False

    def starts(self, horizon_s: float) -> list[float]:
        """Every occurrence's start: ``at``, then every ``every`` while before ``horizon_s``."""
        if self.every_s is None:
            return [self.at_s]
        starts: list[float] = []
        t = self.at_s
        while (self.times is None or len(starts) < self.times) and (t < horizon_s or not starts):
            starts.append(t)
            t += self.every_s
        return starts


@dataclass(frozen=True)
class Expression:
    """A PromQL expression as written, and where: for an error at its line once parsed."""

    expr: str
    source: Source
    loc: Loc

    def error(self, message: str) -> SpecError:
        return self.source.error(self.loc, message)


@dataclass(frozen=True)
class Experiment:
    """An experiment with its target resolved, overrides applied and every reference checked."""

    spec: ExperimentSpec
    topology: TopologySpec
    faults: tuple[FaultEntry, ...]
    file: Path
    topology_file: Path
    promql: tuple[Expression, ...] = ()  # every expression the run will ask Prometheus
    capacity: CapacityShare | None = None  # the load's rate, when given as a share of capacity

    @property
    def name(self) -> str:
        return self.spec.name
