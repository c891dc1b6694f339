"""What a target file must be beyond its schema, checked when it loads: component names that are
names and not the harness's own, links and the load between components that exist, and every
placeholder (``{port:NAME}``, ``{addr:NAME}``, ``{link:A->B}``, ``{var:NAME}``) naming something
the target has. Each failure is one SpecError at its line."""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.faults import FAULTS
from harness.ledger.sources import KafkaOffsets, LedgerSource
from harness.topology import (
    LEDGER_PLACEHOLDERS,
    NAME_PATTERN,
    NATS_SUBJECT,
    PLACEHOLDER,
    SIMPLE_PLACEHOLDERS,
    LoadPublish,
    TopologySpec,
)
from harness.yamlsource import Loc, Source


def no_such(what: str, name: str, choices: Iterable[str]) -> str:
    return f"no {what} {name!r}; {what}s are {', '.join(sorted(choices)) or '(none)'}"


# What the harness names its own processes and files after, beside the target's components.
RESERVED = re.compile(r"^(prometheus|toxiproxy|load|load-worker-\d+)$")


def _check_names(topology: TopologySpec, source: Source) -> None:
    """Component names are names (they name logs, data folders and processes), none is the
    harness's own, and no replica's name is another component's."""
    named: dict[str, str] = {}  # each process name: what it names
    for name in topology.components:
        loc = ("components", name)
        if not re.match(NAME_PATTERN, name):
            raise source.error(
                loc, f"{name!r} is not a name: a letter, then letters, digits, '_' or '-'"
            )
        if RESERVED.match(name):
            raise source.error(loc, f"{name!r} is the harness's own: name the component otherwise")
        for replica in topology.replica_names(name):
            this = f"component {name!r}" if replica == name else f"a replica of {name!r}"
            if replica in named:
                raise source.error(
                    loc, f"{replica!r} names both {named[replica]} and {this}; rename one"
                )
            named[replica] = this


def check_topology(topology: TopologySpec, source: Source) -> None:
    _check_names(topology, source)
    names = topology.components.keys()
    for index, link in enumerate(topology.links):
        for end in link.split("->"):
            if end not in names:
                raise source.error(("links", index), no_such("component", end, names))
    if topology.load.component not in names:
        raise source.error(
            ("load", "component"), no_such("component", topology.load.component, names)
        )
    if "{id}" not in topology.load.body:
        raise source.error(
            ("load", "body"),
            "the body must carry the message id as {id}: the ledger tells messages apart by it",
        )
    if topology.load.publish is not None:
        _check_publish(topology.load.publish, topology.queue, source)
    if topology.observers == "docker" and topology.deployer != "docker":
        raise source.error(
            ("observers",),
            "observers: docker runs Prometheus on the run's container network, which only the "
            "docker deployer makes (--deployer docker)",
        )
    for name, component in topology.components.items():
        texts: list[tuple[Loc, str]] = [
            (("components", name, "command", i), a) for i, a in enumerate(component.command)
        ]
        texts += [(("components", name, "env", k), v) for k, v in component.env.items()]
        texts += [
            (("components", name, "ready", "command", i), a)
            for i, a in enumerate(component.ready.command)
        ]
        if component.workdir is not None:
            texts.append((("components", name, "workdir"), component.workdir))
        for loc, text in texts:
            for match in PLACEHOLDER.finditer(text):
                _check_placeholder(match, topology, source, loc)
        if component.metrics_port is not None and component.metrics_port not in component.ports:
            raise source.error(
                ("components", name, "metrics_port"),
                no_such("port", component.metrics_port, component.ports),
            )
    _check_ledger(topology, source)
    _check_faults(topology, source)
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
    if kind == "addr" and arg is not None:
        check_addr(arg, topology, source, loc)
        return
    own = topology.components[str(loc[1])]  # loc: components.NAME...
    if kind == "var" and arg in own.vars:
        return
    if kind == "port" and arg in own.ports:
        return
    if kind == "port":
        raise source.error(loc, no_such("port", str(arg), own.ports))
    if kind == "var":
        raise source.error(loc, no_such("var", str(arg), own.vars))
    if kind == "link":
        raise source.error(loc, no_such("link", str(arg), topology.links))
    known = [
        *sorted(SIMPLE_PLACEHOLDERS),
        "link:A->B",
        "addr:NAME",
        "addr:NAME:PORT",
        "var:NAME",
        "port:NAME",
    ]
    raise source.error(loc, f"unknown placeholder {match.group(0)}; known: {', '.join(known)}")


# What a target's fault command may name beside addresses, links and its vars: the replica it
# acts on, and what a command run on the harness's host has.
FAULT_PLACEHOLDERS = {"host", "port", "name", "python", "dir", "run"}


def _check_faults(topology: TopologySpec, source: Source) -> None:
    """A target's own faults: not a built-in kind's name, on a component it has, and every
    placeholder of their commands one that means something on the harness's host."""
    for name, fault in topology.faults.items():
        loc: Loc = ("faults", name)
        if name in FAULTS:
            raise source.error(loc, f"{name!r} is a built-in fault: name the target's otherwise")
        if fault.component not in topology.components:
            raise source.error(
                (*loc, "component"), no_such("component", fault.component, topology.components)
            )
        for field in ("apply", "heal"):
            for index, arg in enumerate(getattr(fault, field)):
                for match in PLACEHOLDER.finditer(arg):
                    kind, value = match.group(1), match.group(2)
                    at = (*loc, field, index)
                    if value is None and kind in FAULT_PLACEHOLDERS:
                        continue
                    if kind == "addr" and value is not None:
                        check_addr(value, topology, source, at)
                    elif kind == "link" and value not in topology.links:
                        raise source.error(at, no_such("link", str(value), topology.links))
                    elif kind == "var" and value not in fault.vars:
                        raise source.error(at, no_such("var", str(value), fault.vars))
                    elif kind not in ("addr", "link", "var"):
                        known = [*sorted(FAULT_PLACEHOLDERS), "addr:NAME", "link:A->B", "var:NAME"]
                        raise source.error(
                            at, f"unknown placeholder {match.group(0)}; known: {', '.join(known)}"
                        )


def check_addr(arg: str, topology: TopologySpec, source: Source, loc: Loc) -> None:
    other, _, port = arg.partition(":")
    if other not in topology.components:
        raise source.error(loc, no_such("component", other, topology.components))
    ports = topology.components[other].ports
    if port and port not in ports:
        raise source.error(loc, f"{other} has {no_such('port', port, ports)}")


def _check_publish(publish: LoadPublish, queue: str, source: Source) -> None:
    """The options of a load that publishes into a broker fit that broker; an unnamed
    destination is the queue."""
    loc = ("load", "publish")
    into = publish.into
    if publish.routing_key is not None and into != "rabbitmq":
        raise source.error(
            (*loc, "routing_key"), f"routing_key is for rabbitmq only; {into} has no routing key"
        )
    if publish.field is not None:
        if into != "redis-stream":
            raise source.error(
                (*loc, "field"), f"field is for redis-stream only; {into} has no entry fields"
            )
        if publish.field in ("", "id"):
            raise source.error(
                (*loc, "field"),
                'name the entry field for the body, other than "id" (which holds the message id)',
            )
    if publish.name == "" and into != "rabbitmq":
        raise source.error((*loc, "name"), f"an empty name is no {into} destination")
    if into == "rabbitmq" and publish.name == "" and not publish.routing_key:
        raise source.error(
            (*loc, "routing_key"),
            "the default exchange ('') routes to the queue named by the routing key: give "
            "routing_key",
        )
    subject = queue if publish.name is None else publish.name
    if into == "nats" and not NATS_SUBJECT.fullmatch(subject):
        raise source.error(
            (*loc, "name") if publish.name is not None else ("queue",),
            f"{subject!r} is no subject to publish to: dot-separated tokens, no spaces, "
            "no wildcards (* or >)",
        )


def _check_ledger(topology: TopologySpec, source: Source) -> None:
    """The ledger sources are read by the harness, outside any component: only the run's
    folder, the topology's folder and components' addresses mean something there."""
    for at, ledger in [*topology.ledger_sources(), *topology.position_sources()]:
        _check_ledger_source(ledger, at, topology, source)


def _check_ledger_source(
    ledger: LedgerSource | KafkaOffsets, at: tuple[str, ...], topology: TopologySpec, source: Source
) -> None:
    for field in ("url", "path"):
        text = getattr(ledger, field, None)
        for match in PLACEHOLDER.finditer(text or ""):
            kind, arg = match.group(1), match.group(2)
            loc = (*at, field)
            if kind == "addr" and arg is not None:
                check_addr(arg, topology, source, loc)
            elif arg is not None or kind not in LEDGER_PLACEHOLDERS:
                raise source.error(
                    loc,
                    f"unknown placeholder {match.group(0)} in a ledger source; known: "
                    f"{', '.join(sorted(LEDGER_PLACEHOLDERS))}, addr:NAME, addr:NAME:PORT",
                )
