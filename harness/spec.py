"""Experiment and topology files: their typed models, and loading them with file:line errors.

Loading goes: YAML with lines (``yamlsource``) → ``--set`` overrides → pydantic models →
cross-checks between the experiment and its target (links, components, moments). Whatever is
wrong, the user gets one ``SpecError`` that names the file, the line and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from harness.errors import SpecError
from harness.faults import FAULTS, Fault, Reach
from harness.units import (
    Condition,
    ConditionField,
    Duration,
    ExpectationField,
    Moment,
    MomentField,
    Rate,
)
from harness.yamlsource import Loc, Override, Source, apply_override, load, merged

M = TypeVar("M", bound=BaseModel)


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _scalar_text(value: Any) -> Any:
    """Environment values are text; YAML reads ``5`` as a number, so take numbers too."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


EnvValue = Annotated[str, BeforeValidator(_scalar_text)]
Arg = Annotated[str, BeforeValidator(_scalar_text)]
LINK_PATTERN = r"^[A-Za-z][\w-]*->[A-Za-z][\w-]*$"
NAME_PATTERN = r"^[A-Za-z][\w-]*$"
PLACEHOLDER = re.compile(r"\{([a-z_]+)(?::([^{}]+))?\}")
SIMPLE_PLACEHOLDERS = {
    "port",
    "python",
    "dir",
    "data",
    "run",
    "name",
    "replica",
    "processed_ledger",
}

# ---------------------------------------------------------------- topology


class Ready(Model):
    """How to tell a component is ready: an HTTP GET answering 2xx, else a TCP connect."""

    http: str | None = Field(None, description="path to GET on the component's port")
    timeout: Duration = 15.0


class ComponentSpec(Model):
    """One deployable part, started as a process; ``{...}`` placeholders are filled at deploy."""

    description: str = ""
    command: list[Arg] = Field(min_length=1)
    env: dict[str, EnvValue] = {}
    replicas: int = Field(1, ge=1, le=64)
    port: int | None = Field(None, ge=1, le=65535, description="a fixed port; default: a free one")
    ready: Ready = Ready(http=None)
    metrics: str | None = Field(None, description="path Prometheus scrapes on the port")


class LoadTarget(Model):
    """Where the load generator sends its messages."""

    component: str
    path: str = "/jobs"


class TopologySpec(Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    queue: str = "jobs"
    components: dict[str, ComponentSpec] = Field(min_length=1)
    links: list[Annotated[str, Field(pattern=LINK_PATTERN)]] = []
    load: LoadTarget
    drained: ConditionField = Field(
        Condition.parse("sum(harness_queue_depth) + sum(harness_queue_inflight) == 0"),
        description="true once the backlog is empty; the run waits for it after the load",
    )

    def dependencies(self) -> dict[str, set[str]]:
        """A component depends on whatever its links point at and the addresses it uses."""
        needs: dict[str, set[str]] = {name: set() for name in self.components}
        for link in self.links:
            source, dest = link.split("->")
            needs[source].add(dest)
        for name, spec in self.components.items():
            for text in [*spec.command, *spec.env.values()]:
                for match in PLACEHOLDER.finditer(text):
                    if match.group(1) == "addr" and match.group(2) != name:
                        needs[name].add(str(match.group(2)))
        return needs

    def layers(self) -> list[list[str]]:
        """Components grouped so each group only needs the groups before it."""
        needs = self.dependencies()
        done: set[str] = set()
        result: list[list[str]] = []
        while len(done) < len(needs):
            layer = [n for n in needs if n not in done and needs[n] <= done]
            if not layer:
                cycle = sorted(set(needs) - done)
                raise ValueError(f"components depend on each other in a cycle: {cycle}")
            result.append(layer)
            done.update(layer)
        return result


# -------------------------------------------------------------- experiment


class LoadSpec(Model):
    rate: Rate
    duration: Duration = Field(gt=0)
    users: int | None = Field(None, ge=1, le=1000)


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
    fault: str
    link: str | None = None
    component: str | None = None


class ThresholdCheck(Model):
    """The query's value at one moment satisfies ``expect``."""

    name: str
    query: str
    at: MomentField
    expect: ExpectationField


class WindowCheck(Model):
    """Every sample of the query over a window satisfies ``expect``."""

    name: str
    query: str
    during: str | None = Field(None, description="a span: fault, load or a fault's name")
    from_: MomentField | None = Field(None, alias="from")
    to: MomentField | None = None
    expect: ExpectationField

    @model_validator(mode="after")
    def _window(self) -> WindowCheck:
        edges = (self.from_ is not None) + (self.to is not None)
        if (self.during is None and edges != 2) or (self.during is not None and edges):
            raise ValueError("give either 'during: <span>' or both 'from' and 'to'")
        return self

    @property
    def window(self) -> tuple[Moment, Moment]:
        if self.during is not None:
            return Moment(f"{self.during}.start"), Moment(f"{self.during}.end")
        assert self.from_ is not None and self.to is not None
        return self.from_, self.to


class RecoveryCheck(Model):
    """After ``after``, the condition becomes true within ``within`` and keeps holding."""

    name: str
    recovers: ConditionField
    after: MomentField
    within: Duration


class LedgerCheck(Model):
    """A count or rate from the message ledger satisfies ``expect``."""

    name: str
    ledger: Literal[
        "lost",
        "duplicated",
        "unexpected",
        "recovered",
        "acknowledged",
        "processed",
        "indeterminate",
        "duplicate_rate",
        "loss_rate",
    ]
    expect: ExpectationField


CHECK_KEYS = {"recovers": "recovery", "ledger": "ledger"}


def _check_tag(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    for key, tag in CHECK_KEYS.items():
        if key in value:
            return tag
    if "query" in value:
        return "window" if {"during", "from", "to"} & value.keys() else "threshold"
    return None


Check = Annotated[
    Annotated[ThresholdCheck, Tag("threshold")]
    | Annotated[WindowCheck, Tag("window")]
    | Annotated[RecoveryCheck, Tag("recovery")]
    | Annotated[LedgerCheck, Tag("ledger")],
    Discriminator(
        _check_tag,
        custom_error_type="check_kind",
        custom_error_message="a check needs 'query' (with 'at', or 'during'/'from'+'to'), "
        "'recovers' or 'ledger'",
    ),
]
CHECK_TAGS = {"threshold", "window", "recovery", "ledger"}


class ExperimentSpec(Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    target: str
    overrides: dict[str, dict[str, Any]] = {}
    load: LoadSpec
    drain: Duration = Field(30.0, description="longest wait for the backlog to empty after load")
    steady_state: list[SteadyState] = []
    timeline: list[TimelineEntry] = []
    checks: list[Check] = Field(min_length=1)


# -------------------------------------------------------------- loaded whole


@dataclass(frozen=True)
class FaultStep:
    """A fault placed on the timeline: seconds after load start, for how long, on what."""

    label: str
    kind: str
    at_s: float
    for_s: float
    target: str
    fault: Fault


@dataclass(frozen=True)
class Experiment:
    """An experiment with its target resolved, overrides applied and every reference checked."""

    spec: ExperimentSpec
    topology: TopologySpec
    steps: tuple[FaultStep, ...]
    file: Path
    topology_file: Path

    @property
    def name(self) -> str:
        return self.spec.name


def load_experiment(path: Path, overrides: Sequence[str] = ()) -> Experiment:
    """Read, override and validate an experiment and its target; raises SpecError."""
    sets = [Override.parse(text) for text in overrides]
    source = load(path)
    exp_sets = [s for s in sets if s.path[0] in _field_names(ExperimentSpec)]
    _apply(source, exp_sets)
    target = source.data.get("target")
    if not isinstance(target, str) or not target:
        raise source.error(("target",), "name the target topology, such as redis-streams")
    topo_path = find_target(target, path.parent)
    if topo_path is None:
        raise source.error(
            ("target",), f"no target {target!r}; looked in {_target_dirs(path.parent)}"
        )
    topo = load(topo_path)
    components = topo.data.get("components")
    if isinstance(components, dict) and isinstance(source.data.get("overrides"), dict):
        for name, extra in source.data["overrides"].items():
            if name not in components:
                raise source.error(("overrides", name), _no_such("component", name, components))
            if isinstance(extra, dict) and isinstance(components[name], dict):
                components[name] = merged(components[name], extra)
    for s in sets:
        if s in exp_sets:
            continue
        if not isinstance(components, dict) or s.path[0] not in components:
            choices = sorted(_field_names(ExperimentSpec) | set(components or ()))
            raise SpecError(
                "--set",
                None,
                s.text,
                f"no experiment field or component {s.path[0]!r}; choose from {', '.join(choices)}",
            )
        apply_override(components, s.path, s.value, s.text)
        topo.overridden[("components", *s.path)] = s.text
    topology = _validate(TopologySpec, topo)
    _check_topology(topology, topo)
    spec = _validate(ExperimentSpec, source)
    steps = tuple(_fault_steps(spec, topology, source))
    _check_moments(spec, steps, source)
    return Experiment(spec, topology, steps, path, topo_path)


def load_topology(path: Path) -> TopologySpec:
    source = load(path)
    topology = _validate(TopologySpec, source)
    _check_topology(topology, source)
    return topology


def _field_names(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def _apply(source: Source, sets: Iterable[Override]) -> None:
    for s in sets:
        apply_override(source.data, s.path, s.value, s.text)
        source.overridden[s.path] = s.text


def _target_dirs(experiment_dir: Path) -> list[str]:
    dirs = [experiment_dir.parent / "targets", Path.cwd() / "targets"]
    extra = os.environ.get("HARNESS_TARGETS")
    if extra:
        dirs = [Path(p) for p in extra.split(os.pathsep)] + dirs
    return [str(d) for d in dict.fromkeys(dirs)]


def find_target(target: str, experiment_dir: Path) -> Path | None:
    """A target is a path to a YAML file, or a name looked up in the ``targets/`` folders."""
    if target.endswith((".yaml", ".yml")) or "/" in target:
        candidate = (experiment_dir / target).resolve()
        return candidate if candidate.is_file() else None
    for folder in _target_dirs(experiment_dir):
        candidate = Path(folder) / f"{target}.yaml"
        if candidate.is_file():
            return candidate
    return None


def _validate(model: type[M], source: Source) -> M:
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        first = _first_error(exc)
        loc = tuple(first["loc"])
        # A check's kind tag sits right after ("checks", index) in pydantic's location.
        if loc[:1] == ("checks",) and len(loc) > 2 and loc[2] in CHECK_TAGS:
            loc = loc[:2] + loc[3:]
        raise source.error(loc, _message(first)) from None


def _first_error(exc: ValidationError) -> Any:
    """An unknown field first: a misspelt name also makes the real one look missing."""
    errors = exc.errors(include_url=False)
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    text = str(error["msg"])
    return text.removeprefix("Value error, ")


def _no_such(what: str, name: str, choices: Iterable[str]) -> str:
    return f"no {what} {name!r}; {what}s are {', '.join(sorted(choices)) or '(none)'}"


def _check_topology(topology: TopologySpec, source: Source) -> None:
    names = topology.components.keys()
    for index, link in enumerate(topology.links):
        for end in link.split("->"):
            if end not in names:
                raise source.error(("links", index), _no_such("component", end, names))
    if topology.load.component not in names:
        raise source.error(
            ("load", "component"), _no_such("component", topology.load.component, names)
        )
    for name, component in topology.components.items():
        texts: list[tuple[Loc, str]] = [
            (("components", name, "command", i), a) for i, a in enumerate(component.command)
        ]
        texts += [(("components", name, "env", k), v) for k, v in component.env.items()]
        for loc, text in texts:
            for match in PLACEHOLDER.finditer(text):
                _check_placeholder(match, topology, source, loc)
    try:
        topology.layers()
    except ValueError as exc:
        raise source.error(("components",), str(exc)) from None


def _check_placeholder(
    match: re.Match[str], topology: TopologySpec, source: Source, loc: Loc
) -> None:
    kind, arg = match.group(1), match.group(2)
    if arg is None and kind in SIMPLE_PLACEHOLDERS:
        return
    if kind == "link" and arg in topology.links:
        return
    if kind == "addr" and arg in topology.components:
        return
    if kind == "link":
        raise source.error(loc, _no_such("link", str(arg), topology.links))
    if kind == "addr":
        raise source.error(loc, _no_such("component", str(arg), topology.components))
    known = [*sorted(SIMPLE_PLACEHOLDERS), "link:A->B", "addr:NAME"]
    raise source.error(loc, f"unknown placeholder {match.group(0)}; known: {', '.join(known)}")


def _fault_steps(
    spec: ExperimentSpec, topology: TopologySpec, source: Source
) -> Iterable[FaultStep]:
    seen: set[str] = set()
    for index, entry in enumerate(spec.timeline):
        loc: Loc = ("timeline", index)
        kind = FAULTS.get(entry.fault)
        if kind is None:
            raise source.error((*loc, "fault"), _no_such("fault", entry.fault, FAULTS))
        if kind.reach is Reach.LINK:
            if entry.link is None or entry.component is not None:
                raise source.error(loc, f"a {entry.fault} fault acts on a link: give 'link'")
            if entry.link not in topology.links:
                raise source.error((*loc, "link"), _no_such("link", entry.link, topology.links))
            target = entry.link
        else:
            if entry.component is None or entry.link is not None:
                raise source.error(
                    loc, f"a {entry.fault} fault acts on a component: give 'component'"
                )
            if entry.component not in topology.components:
                raise source.error(
                    (*loc, "component"), _no_such("component", entry.component, topology.components)
                )
            target = entry.component
        try:
            fault = kind.model_validate(entry.model_extra or {})
        except ValidationError as exc:
            first = _first_error(exc)
            raise source.error((*loc, *first["loc"]), _message(first)) from None
        label = entry.name or f"{entry.fault}-{index}"
        if label in seen:
            raise source.error((*loc, "name"), f"two faults are named {label!r}")
        seen.add(label)
        yield FaultStep(label, entry.fault, entry.at, entry.for_, target, fault)


def _check_moments(spec: ExperimentSpec, steps: Sequence[FaultStep], source: Source) -> None:
    spans = {"load"} | ({"fault"} if steps else set()) | {s.label for s in steps}
    for index, check in enumerate(spec.checks):
        loc: Loc = ("checks", index)
        moments: list[tuple[str, Moment]] = []
        if isinstance(check, ThresholdCheck):
            moments = [("at", check.at)]
        elif isinstance(check, RecoveryCheck):
            moments = [("after", check.after)]
        elif isinstance(check, WindowCheck) and check.during is not None:
            moments = [("during", m) for m in check.window]
        elif isinstance(check, WindowCheck):
            moments = list(zip(("from", "to"), check.window, strict=True))
        for field, moment in moments:
            if moment.span is not None and moment.span not in spans:
                raise source.error((*loc, field), _no_such("span", moment.span, spans))
