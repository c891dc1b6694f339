"""Deliveries per message and processings that overlapped, from every delivery the processed side
recorded (``"applied": false`` marks one that applied nothing: its processing failed, or an
idempotent sink absorbed it as a duplicate).

- ``attempts_max``, ``attempts_p99``: the most deliveries one message had, and the 99th
  percentile of deliveries per message delivered; a poison message retried without end, or a
  redelivery loop, shows here while ``duplicated`` (effects applied twice) stays 0.
- ``concurrent``: messages with two deliveries, on two consumers, whose processings overlapped
  in time (each from its ``start`` to its ``t``): the redelivery of a message its first
  consumer still works on (a visibility timeout or claim window shorter than the job). None
  when no delivery records when its processing began.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

DELIVERY_VALUES = ("attempts_max", "attempts_p99", "concurrent")

_ATTEMPTS = """
WITH per_id AS (SELECT id, count(*) AS attempts FROM deliveries GROUP BY id)
SELECT coalesce(max(attempts), 0), coalesce(quantile_disc(attempts, 0.99), 0),
    (SELECT list(id) FROM (SELECT id FROM per_id ORDER BY attempts DESC, id LIMIT {examples}))
FROM per_id
"""

# Only the ids delivered more than once can overlap: the join stays small on ten million.
_CONCURRENT = """
WITH timed AS (
    SELECT id, consumer, TRY_CAST(start AS DOUBLE) AS began, TRY_CAST(t AS DOUBLE) AS ended
    FROM deliveries
    WHERE id IN (SELECT id FROM deliveries GROUP BY id HAVING count(*) > 1)
), overlapped AS (
    SELECT DISTINCT a.id FROM timed a JOIN timed b ON a.id = b.id
        AND a.consumer IS DISTINCT FROM b.consumer AND a.began < b.ended AND b.began < a.ended
)
SELECT count(*), min(id, {examples}) FROM overlapped
"""


def deliveries_of(
    db: duckdb.DuckDBPyConnection, examples: int
) -> tuple[dict[str, int | None], dict[str, list[str]]]:
    """The delivery values and their example ids, from the table ``deliveries`` (with ``t``,
    ``start`` and ``consumer``)."""
    most, p99, busiest = db.execute(_ATTEMPTS.format(examples=examples)).fetchone() or (0, 0, [])
    counts: dict[str, int | None] = {"attempts_max": int(most), "attempts_p99": int(p99)}
    found = {"attempts_max": list(busiest or []), "attempts_p99": list(busiest or [])}
    delivered, started = db.execute(
        "SELECT count(*), count(TRY_CAST(start AS DOUBLE)) FROM deliveries"
    ).fetchone() or (0, 0)
    if delivered and not started:
        counts["concurrent"] = None
        return counts, found
    overlapped, ids = db.execute(_CONCURRENT.format(examples=examples)).fetchone() or (0, [])
    counts["concurrent"] = int(overlapped)
    return counts, {**found, "concurrent": list(ids or [])}
