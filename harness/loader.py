"""Loading experiment and topology files, with every error naming file, line and field.

Loading goes: YAML with lines (``yamlsource``) → ``--set`` overrides → the pydantic models of
``spec`` → cross-checks between the experiment and its target (links, components, replica
counts, moments, faults that cannot overlap). Whatever is wrong, the user gets one
``SpecError``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from harness.capacity import store
from harness.capacity.share import CapacityShare, CapacityUnmeasured, Subject, percent_of
from harness.checks import CHECK_TAGS
from harness.errors import SpecError
from harness.faults import FAULTS, Fault, Reach
from harness.faults.command import Declared
from harness.ledger.sources import LEDGER_SOURCES
from harness.spec import Experiment, ExperimentSpec, Expression, FaultEntry, TimelineEntry
from harness.target_checks import check_topology, no_such
from harness.topology import (
    TopologySpec,
)
from harness.yamlsource import Loc, Override, Source, apply_override, leaves, load, merged

M = TypeVar("M", bound=BaseModel)
QUEUE_VARIABLE = "$queue"
# The experiment's fields that decide where its target runs (and --deployer, --observers).
PLACEMENT = ("deployer", "observers")
# What a share of an unmeasured capacity stands for while a file is only validated.
STAND_IN_RATE = 100.0


def load_experiment(
    path: Path, overrides: Sequence[str | Override] = (), stand_in: bool = False
) -> Experiment:
    """Read, override and validate an experiment and its target; raises SpecError.

    A rate given as a share of capacity is read from this machine's measurement of the
    target; without one, CapacityUnmeasured, or with ``stand_in`` a stand-in capacity (to
    validate the rest of the file)."""
    sets = [o if isinstance(o, Override) else Override.parse(o) for o in overrides]
    source = load(path)
    exp_sets = [s for s in sets if s.path[0] in field_names(ExperimentSpec)]
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
                raise source.error(("overrides", name), no_such("component", name, components))
            if isinstance(extra, dict) and isinstance(components[name], dict):
                components[name] = merged(components[name], extra)
                for leaf in leaves(extra):
                    topo.borrowed[("components", name, *leaf)] = (
                        source,
                        ("overrides", name, *leaf),
                    )
    for s in sets:
        if s in exp_sets:
            continue
        if not isinstance(components, dict) or s.path[0] not in components:
            choices = sorted(field_names(ExperimentSpec) | set(components or ()))
            raise s.refused(
                f"no experiment field or component {s.path[0]!r}; choose from {', '.join(choices)}"
            )
        topo.overridden[("components", *apply_override(components, s))] = s
    for key in PLACEMENT:
        if isinstance(topo.data, dict) and isinstance(source.data.get(key), str):
            # The experiment (or --deployer, --observers) decides for this run.
            topo.data[key] = source.data[key]
            topo.borrowed[(key,)] = (source, (key,))
    topology = _validate(TopologySpec, topo)
    check_topology(topology, topo)
    component_sets = [s.text for s in sets if s not in exp_sets]
    share = _capacity_share(source, topology, Subject(topo_path, sets=tuple(component_sets)),
                            stand_in)  # fmt: skip
    source.data = _with_queue(source.data, topology.queue)
    spec = _validate(ExperimentSpec, source)
    faults = tuple(_fault_entries(spec, topology, source))
    _check_times(faults, spec.load.duration, source)
    _check_overlaps(faults, spec.load.duration, source)
    _check_moments(spec, faults, source)
    _check_check_names(spec, source)
    if spec.time_limit is not None and spec.time_limit <= spec.load.duration:
        raise source.error(
            ("time_limit",),
            f"the time limit ({spec.time_limit:g}s) must be longer than the load "
            f"({spec.load.duration:g}s)",
        )
    return Experiment(
        spec, topology, faults, path, topo_path, _promql(spec, topology, source, topo), share
    )


def _capacity_share(
    source: Source, topology: TopologySpec, subject: Subject, stand_in: bool
) -> CapacityShare | None:
    """``load.rate: 40% capacity`` made messages per second, from the measurement of this
    system (the target after every override) on this machine."""
    load = source.data.get("load")
    if not isinstance(load, dict):
        return None
    try:
        percent = percent_of(load.get("rate"))
    except ValueError as exc:
        raise source.error(("load", "rate"), str(exc)) from None
    if percent is None:
        return None
    measured = store.recent(topology)
    if measured is None and not stand_in:
        placement = [f"{key}={source.data[key]}" for key in PLACEMENT
                     if isinstance(source.data.get(key), str)]  # fmt: skip
        overrides = source.data.get("overrides")
        line = source.line(("load", "rate"))
        raise CapacityUnmeasured(
            f"{source.path}:{line}" if line else source.path,
            replace(subject, overrides=overrides if isinstance(overrides, dict) else {},
                    sets=(*subject.sets, *placement)),
            topology.name,
        )  # fmt: skip
    capacity = measured.rate_per_s if measured else STAND_IN_RATE
    load["rate"] = round(capacity * percent / 100, 3)
    return CapacityShare(percent, measured)


def _promql(
    spec: ExperimentSpec, topology: TopologySpec, source: Source, topo: Source
) -> tuple[Expression, ...]:
    """Every PromQL expression the run will ask, with where it was written."""
    found = [
        Expression(state.query, source, ("steady_state", i, "query"))
        for i, state in enumerate(spec.steady_state)
    ]
    for i, check in enumerate(spec.checks):
        found += [Expression(expr, source, ("checks", i, key)) for key, expr in check.queries()]
    found += [Expression(c.expr, source, ("abort_if", i)) for i, c in enumerate(spec.abort_if)]
    found.append(Expression(topology.drained.expr, topo, ("drained",)))
    return tuple(found)


def _with_queue(data: Any, queue: str) -> Any:
    """The experiment with ``$queue`` (as on the dashboards) replaced by its target's queue, so
    one experiment reads the right series on a target whose queue has another name."""
    if isinstance(data, str):
        return data.replace(QUEUE_VARIABLE, queue)
    if isinstance(data, dict):
        return {key: _with_queue(value, queue) for key, value in data.items()}
    if isinstance(data, list):
        return [_with_queue(value, queue) for value in data]
    return data


def experiment_files(paths: Iterable[str]) -> list[Path]:
    """Files as given; a folder stands for its ``*.yaml`` and ``*.yml`` files, in name order."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        try:
            folder = path.is_dir()
        except OSError:  # a name too long, say: loading it says so
            folder = False
        if not folder:
            found.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not inside:
            raise SpecError(name, None, "", "no experiment files (*.yaml) in this folder")
        found.extend(inside)
    return found


def load_topology(path: Path) -> TopologySpec:
    source = load(path)
    topology = _validate(TopologySpec, source)
    check_topology(topology, source)
    return topology


def field_names(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def _apply(source: Source, sets: Iterable[Override]) -> None:
    for s in sets:
        source.overridden[apply_override(source.data, s)] = s


def _target_dirs(experiment_dir: Path) -> list[str]:
    # Beside the experiments' folder, or beside a folder above it (experiments/containers/).
    above = [folder / "targets" for folder in experiment_dir.resolve().parents]
    dirs = [*above[:3], Path.cwd() / "targets"]
    extra = os.environ.get("HARNESS_TARGETS")
    if extra:
        dirs = [Path(p) for p in extra.split(os.pathsep)] + dirs
    return [str(d) for d in dict.fromkeys(dirs)]


def find_target(target: str, experiment_dir: Path) -> Path | None:
    """A target is a path to a YAML file, or a name (``examples/celery-tasks``: in a subfolder)
    looked up in the ``targets/`` folders."""
    is_file_name = target.endswith((".yaml", ".yml"))
    if is_file_name or "/" in target:
        candidate = (experiment_dir / target).resolve()
        if candidate.is_file():
            return candidate  # a path from the experiment's folder
        if is_file_name:
            return None
    for folder in _target_dirs(experiment_dir):  # a name, or a name in a subfolder
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
        if loc[:1] == ("ledger",) and len(loc) > 1 and loc[1] in LEDGER_SOURCES:
            loc = loc[:1] + loc[2:]
        if loc[:1] in (("places",), ("output",)) and len(loc) > 2 and loc[2] in LEDGER_SOURCES:
            loc = loc[:2] + loc[3:]
        if loc[-1:] == ("[key]",):  # a mapping's key that is not one it may have
            loc = loc[:-1]
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


def _fault_entries(
    spec: ExperimentSpec, topology: TopologySpec, source: Source
) -> Iterable[FaultEntry]:
    seen: set[str] = set()
    for index, entry in enumerate(spec.timeline):
        loc: Loc = ("timeline", index)
        if entry.fault in topology.faults:
            targets, fault = _declared(entry, topology, source, loc)
        else:
            targets, fault = _built_in(entry, topology, source, loc)
        label = entry.name or f"{entry.fault}-{index}"
        if label in seen:
            raise source.error((*loc, "name"), f"two faults are named {label!r}")
        seen.add(label)
        yield FaultEntry(
            index, label, entry.fault, entry.at, entry.for_, entry.every, entry.times,
            targets, entry.count, entry.percent, fault,
            spec.require_effect if entry.require_effect is None else entry.require_effect,
        )  # fmt: skip


def _built_in(
    entry: TimelineEntry, topology: TopologySpec, source: Source, loc: Loc
) -> tuple[tuple[str, ...], Fault]:
    """A timeline entry of a registered kind: the links or components it may act on, and the
    fault made from its fields."""
    kind = FAULTS.get(entry.fault)
    if kind is None:
        known = [*FAULTS, *topology.faults]
        raise source.error((*loc, "fault"), no_such("fault", entry.fault, known))
    field, other = ("link", "component") if kind.reach is Reach.LINK else ("component", "link")
    chosen, unwanted = getattr(entry, field), getattr(entry, other)
    if chosen is None or unwanted is not None:
        raise source.error(loc, f"a {entry.fault} fault acts on a {field}: give '{field}'")
    targets = (chosen,) if isinstance(chosen, str) else tuple(chosen)
    known = topology.links if field == "link" else list(topology.components)
    for position, name in enumerate(targets):
        where = (*loc, field) if isinstance(chosen, str) else (*loc, field, position)
        if name not in known:
            raise source.error(where, no_such(field, name, known))
        if field == "component" and topology.components[name].external is not None:
            raise source.error(
                where,
                f"{name} is external: the harness cannot {entry.fault} what it did not "
                "start; a fault on one of its links reaches it",
            )
    if kind.deployer is not None and topology.deployer != kind.deployer:
        raise source.error(
            (*loc, "fault"),
            f"a {entry.fault} fault needs the {kind.deployer} deployer (--deployer "
            f"{kind.deployer}); this target runs with {topology.deployer}",
        )
    if kind.reach is Reach.COMPONENT:
        _check_count(entry.count, targets, topology, source, loc)
    elif entry.count is not None or entry.percent is not None:
        raise source.error(loc, "'count' and 'percent' choose replicas of a component")
    try:
        return targets, kind.model_validate(entry.model_extra or {})
    except ValidationError as exc:
        first = _first_error(exc)
        raise source.error((*loc, *first["loc"]), _message(first)) from None


def _declared(
    entry: TimelineEntry, topology: TopologySpec, source: Source, loc: Loc
) -> tuple[tuple[str, ...], Fault]:
    """A timeline entry of one of the target's own faults: on the component it declares (an
    entry may name it, not another), with the declared settings as the entry changes them."""
    declared = topology.faults[entry.fault]
    component = declared.component
    if entry.link is not None or entry.component not in (None, component):
        raise source.error(
            loc, f"{entry.fault} is {topology.name}'s own fault on {component}: give no other"
        )
    _check_count(entry.count, [component], topology, source, loc)
    settings = dict(declared.vars)
    for key, value in (entry.model_extra or {}).items():
        if key not in declared.vars:
            raise source.error((*loc, key), f"unknown field; {no_such('var', key, declared.vars)}")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise source.error((*loc, key), "a setting is text or a number")
        settings[key] = str(value)
    fault = Declared(
        name=entry.fault, vars=settings, apply_argv=tuple(declared.apply),
        heal_argv=tuple(declared.heal), timeout_s=declared.timeout,
    )  # fmt: skip
    return (component,), fault


def _check_count(
    count: int | None, targets: Sequence[str], topology: TopologySpec, source: Source, loc: Loc
) -> None:
    if count is None:
        return
    for name in targets:
        replicas = topology.components[name].replicas
        if count > replicas:
            raise source.error(
                (*loc, "count"), f"{count} replicas asked of {name}, which has {replicas}"
            )


# Occurrences of one timeline entry: a fault every second of an hour is a mistake, and checking
# every pair for overlaps grows with the square of them.
MAX_OCCURRENCES = 1000


def _check_times(faults: Sequence[FaultEntry], horizon_s: float, source: Source) -> None:
    """A fault starts while the load runs, and repeats a bounded number of times."""
    for fault in faults:
        loc: Loc = ("timeline", fault.index)
        if fault.at_s >= horizon_s:
            raise source.error(
                (*loc, "at"),
                f"{fault.at_s:g}s is not before the load's end ({horizon_s:g}s): a fault "
                "starts while the load runs",
            )
        if fault.every_s is not None:
            before_end = math.ceil((horizon_s - fault.at_s) / fault.every_s)
            occurrences = before_end if fault.times is None else min(fault.times, before_end)
            if occurrences > MAX_OCCURRENCES:
                raise source.error(
                    (*loc, "every"),
                    f"every {fault.every_s:g}s over {horizon_s - fault.at_s:g}s of load is "
                    f"{occurrences} faults; at most {MAX_OCCURRENCES}",
                )


def _check_overlaps(faults: Sequence[FaultEntry], horizon_s: float, source: Source) -> None:
    """Two faults that cannot both be in effect on a target must not overlap in time there."""
    windows = [(f, t, t + f.for_s) for f in faults for t in f.starts(horizon_s)]
    for i, (a, a_start, a_end) in enumerate(windows):
        for b, b_start, b_end in windows[i + 1 :]:
            if a_start >= b_end or b_start >= a_end or not set(a.targets) & set(b.targets):
                continue
            if a.fault.conflicts_with(b.fault) or b.fault.conflicts_with(a.fault):
                first, second = sorted((a, b), key=lambda f: f.index)
                where = ", ".join(sorted(set(a.targets) & set(b.targets)))
                raise source.error(
                    ("timeline", second.index),
                    f"{second.kind} overlaps {first.kind} (timeline[{first.index}]) on {where} "
                    f"from {max(a_start, b_start):g}s: they cannot both apply",
                )


def _check_check_names(spec: ExperimentSpec, source: Source) -> None:
    """A check's name is how the verdict table, JUnit and --repeat tell checks apart."""
    for kind in ("steady_state", "checks"):
        first: dict[str, int] = {}
        for index, check in enumerate(getattr(spec, kind)):
            if check.name in first:
                other = first[check.name]
                line = source.line((kind, other, "name"))
                raise source.error(
                    (kind, index, "name"),
                    f"two checks are named {check.name!r}: also {kind}[{other}]"
                    + (f" on line {line}" if line else ""),
                )
            first[check.name] = index


def _check_moments(spec: ExperimentSpec, faults: Sequence[FaultEntry], source: Source) -> None:
    spans = {"load"} | ({"fault"} if faults else set()) | {f.label for f in faults}
    if spec.load.shape is not None:
        spans |= set(spec.load.shape.names())
    for index, check in enumerate(spec.checks):
        loc: Loc = ("checks", index)
        for field, moment in check.looks_at():
            if moment.span is not None and moment.span not in spans:
                raise source.error((*loc, field), no_such("span", moment.span, spans))
