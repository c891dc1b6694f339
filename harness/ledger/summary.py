"""The ledger: an account of every message, from what was sent and what was processed.

As Jepsen's queue checkers do: ``lost`` were acknowledged, never processed and found in none of
the target's places; ``dead_lettered``, ``delayed`` and ``pending`` were acknowledged, never
processed and found in that place after the drain (the first of them that holds the id);
``duplicated`` were processed more than once; ``unexpected`` were processed though never sent,
or sent and refused; ``recovered`` had no answer at send time, yet were processed. A pure
function of the ledger files, so a stored run can be judged again from its own files. Counted
by SQL over the tables the files are read into, so that ten million messages take seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.ledger.deliveries import DELIVERY_VALUES, deliveries_of
from harness.ledger.files import SendOutcome, database, load_place, load_processings, load_sends
from harness.ledger.order import ORDER_VALUES, order_of
from harness.ledger.sources import PLACE_ROLES, PlaceRole

if TYPE_CHECKING:
    import duckdb

EXAMPLES = 10


@dataclass(frozen=True)
class LedgerSummary:
    acknowledged: int
    failed: int
    indeterminate: int
    processed: int  # distinct ids processed
    deliveries: int  # processings, duplicates included
    lost: int
    duplicated: int
    unexpected: int
    recovered: int
    examples: dict[str, list[str]] = field(default_factory=dict)
    # Acknowledged, never processed, and found where the target said such messages rest.
    dead_lettered: int = 0
    delayed: int = 0
    pending: int = 0
    # Order within a key (``harness.ledger.order``); None: not judged (no keys, or no order).
    reordered: int | None = None
    skipped: int | None = None
    max_gap: int | None = None
    # Deliveries per message and overlapping processings (``harness.ledger.deliveries``);
    # None: not judged (a journal from before they were, or no processing start recorded).
    attempts_max: int | None = None
    attempts_p99: int | None = None
    concurrent: int | None = None
    # The effects the target's output held beyond one per message processed; None: the target
    # declares no ``output.effects``.
    excess: int | None = None
    # Partitions whose committed position is not the number of records processed from them;
    # None: the target declares no ``output.positions``.
    mismatched_positions: int | None = None

    @property
    def duplicate_rate(self) -> float:
        """Extra deliveries per distinct message processed."""
        return (self.deliveries - self.processed) / self.processed if self.processed else 0.0

    @property
    def loss_rate(self) -> float:
        return self.lost / self.acknowledged if self.acknowledged else 0.0

    def value(self, name: str) -> float | None:
        number: float | None = getattr(self, name)
        return number

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duplicate_rate"] = self.duplicate_rate
        data["loss_rate"] = self.loss_rate
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LedgerSummary:
        # A journal written before the places were counted has none of theirs, nor any order.
        counts: dict[str, Any] = {
            f.name: int(data.get(f.name, 0) if f.name in _PLACED else data[f.name])
            for f in fields(cls)
            if f.name not in ("examples", *_JUDGED)
        }
        counts.update({name: _count(data.get(name)) for name in _JUDGED})
        return cls(**counts, examples=dict(data.get("examples") or {}))


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


# Each category of the summary, as a condition on one id's account: its send's outcome (NULL:
# never sent), the times it was processed, and the first place that held it (NULL: none).
_UNPROCESSED = "outcome = 'ok' AND times = 0"
_CATEGORIES: dict[str, str] = {
    "lost": f"{_UNPROCESSED} AND place IS NULL",
    "duplicated": "times > 1",
    "unexpected": "times > 0 AND (outcome IS NULL OR outcome = 'fail')",
    "recovered": "outcome = 'info' AND times > 0",
    **{role: f"{_UNPROCESSED} AND place = '{role}'" for role in PLACE_ROLES},
}
_PLACED: set[str] = set(PLACE_ROLES)
# The values a ledger may not tell (None): absent from a journal written before them.
_JUDGED = (*ORDER_VALUES, *DELIVERY_VALUES, "excess", "mismatched_positions")


def read(
    sent: Path,
    processed: Path,
    places: Mapping[PlaceRole, Path] | None = None,
    effects: Path | None = None,
    positions: Path | None = None,
) -> LedgerSummary:
    """The summary of a run's ledger files: sends, processings, the ids each place held (a
    missing file holds none), the effects the output held and its positions (None: not
    counted)."""
    with database() as db:
        load_sends(db, sent, ("t", "key"))
        load_processings(db, processed, ("t", "start", "consumer"))
        db.execute("CREATE TABLE places (id VARCHAR, role VARCHAR)")
        for role, path in (places or {}).items():
            load_place(db, path, f"place_{role}")
            db.execute(f"INSERT INTO places SELECT DISTINCT id, '{role}' FROM place_{role}")
        found = summary_of(db)
        # Each an int, or None where the ledger cannot tell.
        counts: dict[str, Any]
        counts, examples = deliveries_of(db, EXAMPLES)
        if (order := order_of(db, EXAMPLES, _CATEGORIES["lost"])) is not None:
            counts, examples = {**counts, **order[0]}, {**examples, **order[1]}
        if effects is not None:
            load_place(db, effects, "effects")
            (total,) = db.execute("SELECT count(*) FROM effects").fetchone() or (0,)
            counts["excess"] = int(total) - found.processed
        if positions is not None:
            mismatched = mismatched_positions(json.loads(positions.read_text(encoding="utf-8")))
            counts["mismatched_positions"] = len(mismatched)
            examples["mismatched_positions"] = mismatched[:EXAMPLES]
        return replace(found, **counts, examples={**found.examples, **examples})


def mismatched_positions(positions: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Each partition whose committed position is not the number of its records processed, as
    Kafka's own system tests compare them: more processings are records processed again (a
    member that died between its output and its commit), fewer are records the group passed
    over; a partition absent from one side is at 0 there."""
    committed, processed = positions.get("committed", {}), positions.get("processed", {})
    return [
        f"{partition}: committed {committed.get(partition, 0)}, "
        f"processed {processed.get(partition, 0)}"
        for partition in sorted({*committed, *processed}, key=_partition_order)
        if committed.get(partition, 0) != processed.get(partition, 0)
    ]


def _partition_order(partition: str) -> tuple[int, str]:
    return (int(partition), "") if partition.isdigit() else (0, partition)


def summarize(sends: Mapping[str, SendOutcome], processed: Mapping[str, int]) -> LedgerSummary:
    """The summary of ledgers already in memory (each id's outcome, and its processings)."""
    with database() as db:
        db.execute("CREATE TABLE sends (id VARCHAR, outcome VARCHAR)")
        db.execute("CREATE TABLE processings (n BIGINT, id VARCHAR)")
        db.execute("CREATE TABLE places (id VARCHAR, role VARCHAR)")
        if sends:
            rows = [(i, outcome.value) for i, outcome in sends.items()]
            db.executemany("INSERT INTO sends VALUES (?, ?)", rows)
        if processed:
            each = [(0, i) for i, times in processed.items() for _ in range(times)]
            db.executemany("INSERT INTO processings VALUES (?, ?)", each)
        return summary_of(db)


def summary_of(db: duckdb.DuckDBPyConnection) -> LedgerSummary:
    """The summary of the tables ``sends`` (id, outcome), ``processings`` (n, id) and
    ``places`` (id, role): one account per id, then every count and example in one pass."""
    first_place = " ".join(f"WHEN '{role}' THEN {n}" for n, role in enumerate(PLACE_ROLES))
    db.execute(
        "CREATE TEMP TABLE account AS SELECT coalesce(s.id, p.id) AS id, s.outcome, "
        "coalesce(p.times, 0) AS times, w.place FROM sends s FULL OUTER JOIN "
        "(SELECT id, count(*) AS times FROM processings GROUP BY id) p USING (id) LEFT JOIN "
        f"(SELECT id, arg_min(role, CASE role {first_place} END) AS place FROM places "
        "GROUP BY id) w ON w.id = coalesce(s.id, p.id)"
    )
    categories = ", ".join(
        f"count(*) FILTER ({where}), min(id, {EXAMPLES}) FILTER ({where})"
        for where in _CATEGORIES.values()
    )
    row = db.execute(
        "SELECT count(*) FILTER (outcome = 'ok'), count(*) FILTER (outcome = 'fail'), "
        "count(*) FILTER (outcome = 'info'), count(*) FILTER (times > 0), "
        f"coalesce(sum(times), 0), {categories} FROM account"
    ).fetchone()
    assert row is not None  # an aggregate without GROUP BY has one row
    acknowledged, failed, indeterminate, processed, deliveries, *found = row
    counts = {name: int(found[2 * i]) for i, name in enumerate(_CATEGORIES)}
    return LedgerSummary(
        acknowledged=int(acknowledged),
        failed=int(failed),
        indeterminate=int(indeterminate),
        processed=int(processed),
        deliveries=int(deliveries),
        **counts,
        examples={name: list(found[2 * i + 1] or []) for i, name in enumerate(_CATEGORIES)},
    )
