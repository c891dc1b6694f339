"""Reading the message ledgers: what the load generator sent, and what the sink saw processed.

Both files are JSON lines appended by processes the experiment may kill at any moment, so a
record can be torn: cut short at the end of the file, or cut short and then glued to the next
record when a restarted writer appends to the same file. Torn records are expected artefacts
of the experiment, not corruption, and the readers skip them (salvaging a glued record).

The files are read by DuckDB, into tables of one database: a soak run's ten million messages
are thirty million lines, which Python's own JSON reading and a dict per id would judge in
minutes and gigabytes (see docs/benchmarks.md). DuckDB reads them on every core within a
memory limit, spilling to a temporary folder beyond it; only the lines it cannot parse (the
torn ones, a handful per kill) come back to Python to be salvaged. A line ends at ``\\n``.
"""

from __future__ import annotations

import enum
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

# What DuckDB may hold in memory while it judges a ledger; beyond it, it spills to disk.
MEMORY_LIMIT = "1GB"
# No valid JSON text holds a raw control character, so no line is split into two columns.
_NO_DELIMITER = "\x1e"


class SendOutcome(enum.Enum):
    """What the producer told the load generator about one send."""

    OK = "ok"  # acknowledged: the message must be processed
    FAIL = "fail"  # refused with an HTTP error: the message must not be processed
    INFO = "info"  # no answer: the message may or may not have been enqueued


class LedgerUnreadable(Exception):
    """A whole record that is not a ledger record: the ledger cannot be judged, and saying so
    beats counting around it (a sink that writes records without ids loses messages too)."""


_TYPES = ("invoke", *(outcome.value for outcome in SendOutcome))


@contextmanager
def database() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory database, limited in memory, spilling into a folder of its own."""
    import duckdb  # 60 ms to import: only the commands that judge a ledger pay for it

    with tempfile.TemporaryDirectory(prefix="harness-ledger-") as spill:
        connection = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill})
        connection.execute("SET enable_progress_bar = false")  # it would draw on the console
        try:
            yield connection
        finally:
            connection.close()


def load_sends(db: duckdb.DuckDBPyConnection, path: Path, extra: tuple[str, ...] = ()) -> None:
    """Table ``send_lines`` (n, id, type) and view ``sends`` (id, outcome): a send's outcome is
    its last completion line, and INFO when its answer never came (an invoke line alone)."""
    _load(db, path, "send_lines", ("type", *extra))
    bad = db.execute(
        "SELECT n, type FROM send_lines WHERE type IS NULL OR type NOT IN "
        f"({', '.join(repr(t) for t in _TYPES)}) ORDER BY n LIMIT 1"
    ).fetchone()
    if bad is not None:
        raise LedgerUnreadable(
            f"{path.name} line {bad[0]}: type is {bad[1]!r}, not one of {sorted(_TYPES)}"
        )
    db.execute(
        "CREATE VIEW sends AS SELECT id, coalesce(arg_max(type, n) FILTER (type <> 'invoke'), "
        "'info') AS outcome FROM send_lines GROUP BY id"
    )


def load_processings(
    db: duckdb.DuckDBPyConnection, path: Path, extra: tuple[str, ...] = ()
) -> None:
    """Table ``deliveries`` (n, id, applied, and the ``extra`` fields of the records, as
    text): every delivery the processed side recorded; table ``processings``: those that
    applied the message, one row per processing, a duplicate delivery twice. A line with
    ``"applied": false`` is a delivery that applied nothing (its processing failed, or an
    idempotent sink absorbed it)."""
    _load(db, path, "deliveries", (*extra, "applied"))
    db.execute(
        "CREATE TABLE processings AS SELECT * FROM deliveries "
        "WHERE applied IS DISTINCT FROM 'false'"
    )


def load_place(db: duckdb.DuckDBPyConnection, path: Path, table: str) -> None:
    """Table ``table`` (n, id): the ids a place's file held, one line per id (or an output's
    effects, one line per effect)."""
    _load(db, path, table, ())


def processings_untimed(db: duckdb.DuckDBPyConnection) -> bool:
    """Whether a processing in table ``processings`` (read with ``t``) has no time: a ledger
    source's, read after the drain, which tells neither when nor in what order."""
    (untimed,) = db.execute(
        "SELECT count(*) FROM processings WHERE TRY_CAST(t AS DOUBLE) IS NULL"
    ).fetchone() or (0,)
    return bool(untimed)


def read_sends(path: Path) -> dict[str, SendOutcome]:
    """Each sent id's outcome; a send with no completion line (its answer never came) is INFO."""
    with database() as db:
        load_sends(db, path)
        return {i: SendOutcome(o) for i, o in db.execute("SELECT * FROM sends").fetchall()}


def read_processed(path: Path) -> dict[str, int]:
    """How many times each id was processed; more than once is a duplicate delivery."""
    with database() as db:
        load_processings(db, path)
        rows = db.execute("SELECT id, count(*) FROM processings GROUP BY id").fetchall()
        return {message_id: int(times) for message_id, times in rows}


def _load(db: duckdb.DuckDBPyConnection, path: Path, table: str, fields: tuple[str, ...]) -> None:
    """The file's whole records as ``table`` (n: the line number, id, and ``fields``); a
    missing file has none, because its writer never wrote one. One pass over the file: a line
    DuckDB parses becomes a row; one it cannot is kept as text, salvaged here, and parsed again
    by the same expressions."""
    names = ("id", *fields)
    # One parse of each line for all its fields: a list of their values, in this order.
    paths = ", ".join(f"'$.{name}'" for name in names)
    extracted = ", ".join(f"v[{i}] AS {name}" for i, name in enumerate(names, 1))
    # What each line is: a record (0), something else that is whole JSON (1, skipped), a record
    # whose id is neither a string nor a number (2: the ledger cannot be read), torn (3).
    state = (
        "CASE WHEN NOT whole THEN 3 WHEN json_type(line) <> 'OBJECT' THEN 1 WHEN coalesce("
        "json_type(line, '$.id'), 'NULL') NOT IN ('VARCHAR', 'BIGINT', 'UBIGINT') THEN 2 "
        "ELSE 0 END"
    )
    rows = (
        f"SELECT n, {extracted}, state, CASE WHEN state >= 2 THEN line END AS line FROM ("
        f"SELECT n, line, {state} AS state, CASE WHEN whole THEN json_extract_string(line, "
        f"[{paths}]) END AS v FROM (SELECT n, line, json_valid(line) AS whole FROM ({{lines}}) "
        "WHERE line IS NOT NULL))"
    )
    scan = (
        "SELECT row_number() OVER () AS n, line FROM read_csv(?, columns = {'line': 'VARCHAR'}, "
        "delim = ?, quote = '', escape = '', header = false, auto_detect = false, "
        "new_line = '\\n', strict_mode = false)"
    )
    import duckdb  # imported already, by database()

    if not path.is_file():
        db.execute(f"CREATE TABLE {table} AS {rows.format(lines='SELECT 0 AS n, NULL AS line')}")
    else:
        create = f"CREATE TABLE {table} AS {rows.format(lines=scan)}"
        try:
            db.execute(create, [str(path), _NO_DELIMITER])
        except duckdb.InvalidInputException:  # bytes that are not UTF-8, in a torn write
            with tempfile.TemporaryDirectory(prefix="harness-ledger-") as folder:
                db.execute(create, [str(_utf8_copy(path, Path(folder))), _NO_DELIMITER])
    torn = db.execute(f"SELECT n, line FROM {table} WHERE state = 3").fetchall()
    db.execute(f"DELETE FROM {table} WHERE state = 3")
    for n, line in torn:
        if (record := _decode(line)) is not None:
            whole = rows.format(lines="SELECT ? AS n, ? AS line")
            db.execute(f"INSERT INTO {table} {whole}", [n, json.dumps(record)])
    bad = db.execute(f"SELECT n, line FROM {table} WHERE state = 2 ORDER BY n LIMIT 1").fetchone()
    if bad is not None:
        raise LedgerUnreadable(
            f'{path.name} line {bad[0]}: a record without a message "id" (a string or a '
            f"number): {bad[1][:120]}"
        )
    db.execute(f"DELETE FROM {table} WHERE state <> 0")


def _utf8_copy(path: Path, folder: Path) -> Path:
    """The file with what is not UTF-8 replaced (U+FFFD), line for line, for DuckDB to read."""
    copy = folder / path.name
    with (
        path.open(encoding="utf-8", errors="replace", newline="\n") as lines,
        copy.open("w", encoding="utf-8", newline="\n") as out,
    ):
        out.writelines(lines)
    return copy


def _decode(line: str) -> dict[str, Any] | None:
    """The line's record, or the whole record glued after a torn one, or None for a torn line."""
    start = 0
    while start != -1:
        try:
            record = json.loads(line[start:])
        except json.JSONDecodeError:
            start = line.find("{", start + 1)
            continue
        return record if isinstance(record, dict) else None
    return None
