"""A run's ledger as a history of operations, in the shape Jepsen's checkers read.

Each send is an ``enqueue``: an ``invoke`` at its invoke line's time, then its completion, an
``ok``, ``fail`` or ``info`` (a send whose answer never came gets an ``info`` at the end of the
history, as Jepsen reads an operation that never completed). Each processing is a ``dequeue``
of that id: an ``invoke`` and an ``ok`` at the time the sink recorded it. Every operation has
its own process, since the load's users and the workers are not told apart in the ledger, and
the time is in nanoseconds from the first operation. A processing without a time (the ledger
of a target with a ``ledger:`` source, read after the drain) comes after every timed one.

So a user can check a run with an independent checker (Jepsen's ``total-queue``, or Knossos's
queue models) instead of trusting the harness's own counts; docs/results.md has the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness.ledger.files import database, load_processings, load_sends, processings_untimed

if TYPE_CHECKING:
    import duckdb

Format = Literal["jsonl", "edn"]
FORMATS: tuple[Format, ...] = ("jsonl", "edn")

# One operation per row: its time, whether it was placed at the end for want of a time of its
# own, its order among operations at the same time, its process, type, f and id.
_OPERATIONS = """
WITH lines AS (
    SELECT n, id, type, TRY_CAST(t AS DOUBLE) AS t FROM send_lines
), processed AS (
    SELECT n, id, TRY_CAST(t AS DOUBLE) AS t, row_number() OVER (ORDER BY n) AS k
    FROM processings
), sends AS (
    SELECT id,
        min(t) FILTER (type = 'invoke') AS invoked,
        arg_max(type, n) FILTER (type <> 'invoke') AS outcome,
        arg_max(t, n) FILTER (type <> 'invoke') AS completed,
        min(n) AS first
    FROM lines GROUP BY id
), numbered AS (
    SELECT *, row_number() OVER (ORDER BY first) - 1 AS process FROM sends
), last AS (
    SELECT coalesce(max(t), 0) AS t FROM (SELECT t FROM lines UNION ALL SELECT t FROM processed)
), sent AS (
    SELECT count(*) AS n FROM sends
)
SELECT coalesce(invoked, completed, last.t) AS t, invoked IS NULL AND completed IS NULL AS late,
    0 AS step, process, 'invoke' AS type, 'enqueue' AS f, id FROM numbered, last
UNION ALL
SELECT coalesce(completed, last.t), completed IS NULL, 1, process, coalesce(outcome, 'info'),
    'enqueue', id FROM numbered, last
UNION ALL
SELECT coalesce(p.t, last.t), p.t IS NULL, 2 * k, sent.n + k, 'invoke', 'dequeue', NULL
    FROM processed p, last, sent
UNION ALL
SELECT coalesce(p.t, last.t), p.t IS NULL, 2 * k + 1, sent.n + k, 'ok', 'dequeue', id
    FROM processed p, last, sent
"""

_VALUE = "CAST(to_json(id) AS VARCHAR)"
# One line per operation, in each format: a JSON object, or an EDN map as Jepsen writes them.
_LINES: dict[Format, str] = {
    "jsonl": '\'{"index": \' || i || \', "type": "\' || type || \'", "f": "\' || f '
    f"|| '\", \"value\": ' || coalesce({_VALUE}, 'null') || ', \"process\": ' || process "
    "|| ', \"time\": ' || time || '}'",
    "edn": "'{:index ' || i || ', :type :' || type || ', :f :' || f || ', :value ' || "
    f"coalesce({_VALUE}, 'nil') || ', :process ' || process || ', :time ' || time || '}}'",
}


def write(sent: Path, processed: Path, out: Path, form: Format) -> int:
    """Write the history of the two ledger files to ``out``; the number of operations."""
    with database() as db:
        load_sends(db, sent, ("t",))
        load_processings(db, processed, ("t",))
        return _write(db, out, form)


def _write(db: duckdb.DuckDBPyConnection, out: Path, form: Format) -> int:
    db.execute(
        "CREATE TEMP TABLE operations AS SELECT row_number() OVER (ORDER BY late, t, step, "
        "process) "
        "- 1 AS i, CAST(round((t - min(t) OVER ()) * 1e9) AS BIGINT) AS time, process, type, "
        f"f, id FROM ({_OPERATIONS})"
    )
    db.execute(
        f"COPY (SELECT {_LINES[form]} FROM operations ORDER BY i) TO '{_quoted(out)}' "
        "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1e')"
    )
    (count,) = db.execute("SELECT count(*) FROM operations").fetchone() or (0,)
    return int(count)


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


# Each acknowledged id's wait, from its acknowledgement to its first processing (never, if it
# was not processed); a processing before the acknowledgement leaves no wait.
_WAITS = """
WITH acked AS (
    SELECT id, min(TRY_CAST(t AS DOUBLE)) FILTER (type = 'ok') AS at FROM send_lines GROUP BY id
), first AS (
    SELECT id, min(TRY_CAST(t AS DOUBLE)) AS at FROM processings GROUP BY id
)
SELECT a.at AS acked, f.at AS processed FROM acked a LEFT JOIN first f USING (id)
WHERE a.at IS NOT NULL AND (f.at IS NULL OR f.at > a.at)
"""


def unseen(
    sent: Path, processed: Path, start: float, end: float, step: float = 1.0
) -> list[tuple[float, float]] | None:
    """How many messages were acknowledged and not yet processed, each ``step`` from ``start``
    to ``end`` (Jepsen's ``unseen``); None when the processings carry no times (a ledger source
    read after the drain), which cannot tell when each was processed."""
    with database() as db:
        load_sends(db, sent, ("t",))
        load_processings(db, processed, ("t",))
        if processings_untimed(db):
            return None
        # A change counts from the first step at or after it: +1 on acknowledgement, -1 on
        # the first processing; the steps' running sum is the count waiting at each.
        rows = db.execute(
            f"WITH waits AS ({_WAITS}), changes AS (SELECT acked AS t, 1 AS d FROM waits "
            "UNION ALL SELECT processed, -1 FROM waits WHERE processed IS NOT NULL), "
            "steps AS (SELECT greatest(0, ceil((t - $start) / $step))::BIGINT AS k, sum(d) AS d "
            "FROM changes WHERE t <= $end GROUP BY k) "
            "SELECT $start + g.range * $step, sum(coalesce(s.d, 0)) OVER (ORDER BY g.range) "
            "FROM range(0, floor(($end - $start) / $step)::BIGINT + 1) g "
            "LEFT JOIN steps s ON s.k = g.range ORDER BY g.range",
            {"start": start, "end": end, "step": step},
        ).fetchall()
    return [(float(t), float(n)) for t, n in rows]
