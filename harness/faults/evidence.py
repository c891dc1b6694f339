"""Evidence that each fault took effect: what it touched while it was in effect.

A fault that applied without an error may still have tested nothing: latency on a link nothing
used, a kill of a replica that held no work, a pause that landed between two batches. After
the drain, each occurrence's evidence is read from what the run recorded:

- a toxic on a link: the bytes through the link's proxy while it was in effect (sampled each
  second by ``harness.observe.traffic``: the edges are as sharp as a sample);
- a partition, which lets nothing through: the bytes on the link in the 5 s before it;
- a fault on replicas: each replica's processings in progress at the fault or finished in the
  5 s before it, where the ledger names the replica as their consumer; otherwise the bytes on
  the component's links in the 5 s before it.

An occurrence that shows none of these did not take effect; one where nothing could tell (the
links' traffic unread, no link, no ledger naming the replica) says so, and neither is held.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.faults.base import FAULTS, Reach
from harness.faults.network import Partition
from harness.journal import Event, Outcome
from harness.ledger.files import database, load_processings
from harness.observe.traffic import moved

if TYPE_CHECKING:
    import duckdb

    from harness.topology import TopologySpec

# How far before a fault that stops everything its target's use is looked for.
BEFORE_S = 5.0
UNREAD = "cannot tell: the links' traffic was not read (see traffic.jsonl)"


@dataclass(frozen=True)
class Effect:
    """What one occurrence of a fault touched: ``bit`` None when nothing could tell."""

    label: str
    occurrence: int
    fault: str
    target: str
    bit: bool | None
    evidence: str

    def describe(self) -> str:
        return f"{self.fault} on {self.target}: {self.evidence}"

    def outcome(self) -> Outcome:
        return {True: Outcome.OK, False: Outcome.FAIL, None: Outcome.INFO}[self.bit]

    def value(self) -> dict[str, Any]:
        """The ``fault.effect`` event's value."""
        return {
            "fault": self.fault, "label": self.label, "occurrence": self.occurrence,
            "bit": self.bit, "evidence": self.evidence,
        }  # fmt: skip

    @classmethod
    def of_event(cls, event: Event) -> Effect:
        v = event.value
        bit = v.get("bit")
        return cls(
            str(v["label"]), int(v["occurrence"]), str(v["fault"]), event.target,
            None if bit is None else bool(bit), str(v["evidence"]),
        )  # fmt: skip


def told(occurrences: Sequence[Effect]) -> tuple[bool, str]:
    """One fault's occurrences in a line: whether any took effect, and the evidence (of the
    first that did, else of each)."""
    bit = [e for e in occurrences if e.bit]
    if bit:
        return True, f"{len(bit)} of {len(occurrences)} took effect: {bit[0].describe()}"
    return False, "; ".join(e.describe() for e in occurrences)


@dataclass(frozen=True)
class Span:
    """One occurrence in effect: from its apply's completion to its heal's start."""

    apply: Event
    end: float

    @property
    def start(self) -> float:
        return self.apply.t_complete


def effects(
    events: Sequence[Event], topology: TopologySpec, processed: Path, traffic: Path
) -> list[Effect]:
    """The evidence of every occurrence that was applied, in the order they were applied."""
    spans = list(_spans(events))
    if not spans:
        return []
    found: list[Effect] = []
    with database() as db:
        load_processings(db, processed, ("t", "start", "consumer"))
        for span in spans:
            value = span.apply.value
            kind, target = str(value["fault"]), span.apply.target
            fault = FAULTS.get(kind)  # None: one of the target's own, on a component
            if fault is not None and fault.reach is Reach.LINK:
                bit, evidence = _on_link(traffic, target, span, fault is Partition)
            else:
                replicas = [str(r) for r in value.get("replicas") or [target]]
                links = [link for link in topology.links if target in link.split("->")]
                bit, evidence = _on_replicas(db, traffic, replicas, links, span)
            found.append(
                Effect(str(value["label"]), int(value["occurrence"]), kind, target, bit, evidence)
            )
    return found


def _spans(events: Sequence[Event]) -> Iterator[Span]:
    """Each applied occurrence, ending at its heal (or at its apply, if it was never healed)."""
    heals = {
        (e.value.get("label"), e.value.get("occurrence")): e.t_invoke
        for e in events
        if e.kind == "fault.heal"
    }
    for event in events:
        if event.kind == "fault.apply" and event.outcome is Outcome.OK:
            key = (event.value.get("label"), event.value.get("occurrence"))
            yield Span(event, heals.get(key, event.t_complete))


def _on_link(traffic: Path, link: str, span: Span, stops_all: bool) -> tuple[bool | None, str]:
    start, end = (span.start - BEFORE_S, span.start) if stops_all else (span.start, span.end)
    when = f"in the {BEFORE_S:g} s before it" if stops_all else "while it was in effect"
    crossed = moved(traffic, link, start, end)
    if crossed is None:
        return None, UNREAD
    if crossed <= 0:
        return False, f"no traffic crossed the link {when}"
    return True, f"{_size(crossed)} crossed the link {when}"


def _on_replicas(
    db: duckdb.DuckDBPyConnection,
    traffic: Path,
    replicas: list[str],
    links: list[str],
    span: Span,
) -> tuple[bool | None, str]:
    worked = [(replica, _work(db, replica, span.start)) for replica in replicas]
    if all(n is not None for _, n in worked):
        told = [
            f"{r} had {n} processings in progress or done in the {BEFORE_S:g} s before"
            for r, n in worked
            if n
        ]
        if told:
            return True, "; ".join(told)
        who = ", ".join(replicas)
        return False, f"{who}: no processing in progress or done in the {BEFORE_S:g} s before"
    if not links:
        return None, "cannot tell: the ledger names no such consumer, and no link reaches it"
    crossed = [moved(traffic, link, span.start - BEFORE_S, span.start) for link in links]
    if any(n is None for n in crossed):
        return None, UNREAD
    total = sum(n for n in crossed if n is not None)
    where = ", ".join(links)
    if total <= 0:
        return False, f"no traffic crossed {where} in the {BEFORE_S:g} s before"
    return True, f"{_size(total)} crossed {where} in the {BEFORE_S:g} s before"


def _work(db: duckdb.DuckDBPyConnection, replica: str, at: float) -> int | None:
    """The replica's processings in progress at ``at`` or finished in the window before it;
    None when no delivery in the ledger names it as its consumer."""
    row = db.execute(
        "SELECT count(*), count(*) FILTER (t >= ? AND coalesce(start, t) <= ?) FROM ("
        "SELECT TRY_CAST(t AS DOUBLE) AS t, TRY_CAST(start AS DOUBLE) AS start FROM deliveries "
        "WHERE consumer = ?)",
        [at - BEFORE_S, at, replica],
    ).fetchone()
    named, worked = row or (0, 0)
    return int(worked) if named else None


def _size(n: float) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"
