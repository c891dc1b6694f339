"""The processed side of the ledger, read from where a system's own workers record their effects:
the sources a target file's ``ledger:`` may name, and their reading.

A system the harness did not write keeps no ledger in the harness's format, but its effects are
somewhere: a Redis set or hash, a table, a file, an endpoint. After the drain, the harness reads
that place once and counts how many times each id was processed; more than once is a duplicate,
never is a loss, exactly as with the reference sink's ledger.
"""

from __future__ import annotations

import collections
import glob
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

import httpx
from pydantic import Discriminator, Field, Tag

from harness import extras, secrets
from harness.errors import MissingComponent
from harness.model import Model


class LedgerPlace(Model):
    """A ledger source; its ``place`` field (``url`` or ``path``) may hold placeholders that the
    harness fills before it reads the source."""

    place: ClassVar[str]

    def filled(self, fill: Callable[[str], str]) -> Self:
        return self.model_copy(update={self.place: fill(getattr(self, self.place))})


class RedisLedger(LedgerPlace):
    """Ids in a Redis key: a set (each processed once), a hash (id → times processed), a sorted
    set (id → times, as the score) or a list (one entry per processing)."""

    place: ClassVar[str] = "url"
    source: Literal["redis"]
    url: str = Field(description="redis://host:port/db; placeholders such as {addr:redis}")
    key: str


class SqliteLedger(LedgerPlace):
    """Rows of a query on an SQLite file: ``id`` (one row per processing) or ``id, count``."""

    place: ClassVar[str] = "path"
    source: Literal["sqlite"]
    path: str = Field(description="the database file; placeholders such as {run}")
    query: str


class PostgresLedger(LedgerPlace):
    """Rows of a query on PostgreSQL: ``id`` (one row per processing) or ``id, count``."""

    place: ClassVar[str] = "url"
    source: Literal["postgres"]
    url: str = Field(description="postgresql://user[:password]@host:port/database; {addr:NAME}")
    query: str


class FileLedger(LedgerPlace):
    """Lines of text files, one processed id a line; ``path`` may be a glob (one per replica)."""

    place: ClassVar[str] = "path"
    source: Literal["file"]
    path: str


class HttpLedger(LedgerPlace):
    """A JSON answer to GET: a list of ids, ``{"ids": [...]}``, or ``{id: times processed}``."""

    place: ClassVar[str] = "url"
    source: Literal["http"]
    url: str


class KafkaOffsets(LedgerPlace):
    """A consumer group's committed offset in each partition of a topic, by partition: where
    the group goes on from. A position, not a ledger of ids: only ``output.positions`` reads it."""

    place: ClassVar[str] = "url"
    source: Literal["kafka"]
    url: str = Field(description="the bootstrap host:port; placeholders such as {addr:broker}")
    topic: str
    group: str


# Where an acknowledged message may rest without being processed, so not lost: the roles a
# target's ``places`` may name, in the order the ledger tries them for an id found in several.
PlaceRole = Literal["dead_lettered", "delayed", "pending"]
PLACE_ROLES: tuple[PlaceRole, ...] = ("dead_lettered", "delayed", "pending")

LEDGER_SOURCES = {"redis", "sqlite", "postgres", "file", "http"}
LedgerSource = Annotated[
    Annotated[RedisLedger, Tag("redis")]
    | Annotated[SqliteLedger, Tag("sqlite")]
    | Annotated[PostgresLedger, Tag("postgres")]
    | Annotated[FileLedger, Tag("file")]
    | Annotated[HttpLedger, Tag("http")],
    Discriminator(
        lambda v: v.get("source") if isinstance(v, dict) else getattr(v, "source", None),
        custom_error_type="ledger_source",
        custom_error_message="source must be one of redis, sqlite, postgres, file, http",
    ),
]

# Where a partition's committed position is read: a group's offsets, or a source of the
# ledger's kinds whose rows are ``partition, position``.
PositionSource = Annotated[
    KafkaOffsets | RedisLedger | SqliteLedger | PostgresLedger | FileLedger | HttpLedger,
    Field(discriminator="source"),
]

TIMEOUT_S = 10.0


class LedgerSourceError(Exception):
    """The source could not be read; the message says which and why."""


def read(source: LedgerSource | KafkaOffsets) -> collections.Counter[str]:
    """How many times each id was processed, by the source (placeholders already filled); for
    a group's offsets, each partition's committed offset."""
    try:
        if isinstance(source, KafkaOffsets):
            return _kafka(source)
        if isinstance(source, RedisLedger):
            return _redis(source)
        if isinstance(source, SqliteLedger):
            return _sqlite(source)
        if isinstance(source, PostgresLedger):
            return _postgres(source)
        if isinstance(source, FileLedger):
            return _files(source)
        return _http(source)
    except LedgerSourceError:
        raise
    except (sqlite3.Error, httpx.HTTPError, OSError, ValueError) as exc:
        raise _unreadable(source, exc) from exc


def _unreadable(source: LedgerSource | KafkaOffsets, exc: Exception) -> LedgerSourceError:
    message = secrets.text(f"{type(exc).__name__}: {exc}")  # libpq echoes the URI
    return LedgerSourceError(f"{describe(source)}: {message}")


def _library(module: str, source: LedgerSource | KafkaOffsets) -> Any:
    try:
        return extras.require(module, f"a {type(source).__name__} ledger source")
    except MissingComponent as exc:
        raise LedgerSourceError(f"{describe(source)}: {exc}") from None


def describe(source: LedgerSource | KafkaOffsets) -> str:
    if isinstance(source, KafkaOffsets):
        return f"kafka group {source.group!r} on {source.topic!r} at {secrets.text(source.url)}"
    if isinstance(source, RedisLedger):
        return f"redis key {source.key!r} at {secrets.url(source.url)}"
    if isinstance(source, SqliteLedger):
        return f"sqlite {source.path}"
    if isinstance(source, PostgresLedger):
        return f"postgres {secrets.text(source.url)}"  # a URL or a key=value DSN
    if isinstance(source, FileLedger):
        return f"files {source.path}"
    return f"GET {secrets.url(source.url)}"


def _redis(source: RedisLedger) -> collections.Counter[str]:
    redis = _library("redis", source)
    try:
        return _redis_key(
            redis.Redis.from_url(
                source.url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            ),
            source,
        )
    except redis.RedisError as exc:
        raise _unreadable(source, exc) from exc


def _redis_key(client: Any, source: RedisLedger) -> collections.Counter[str]:
    try:
        kind = _text(client.type(source.key))
        if kind == "none":
            return collections.Counter()  # nothing processed yet writes no key
        if kind == "set":
            return collections.Counter({_text(m): 1 for m in client.smembers(source.key)})
        if kind == "hash":
            return _counts(client.hgetall(source.key).items(), source)
        if kind == "zset":
            return _counts(client.zrange(source.key, 0, -1, withscores=True), source)
        if kind == "list":
            return collections.Counter(_text(m) for m in client.lrange(source.key, 0, -1))
        raise LedgerSourceError(
            f"{describe(source)} is a {kind}; a ledger key is a set, hash, sorted set or list"
        )
    finally:
        client.close()


def _sqlite(source: SqliteLedger) -> collections.Counter[str]:
    path = Path(source.path)
    if not path.is_file():
        raise LedgerSourceError(f"{describe(source)}: no such file")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT_S) as db:
        rows = db.execute(source.query).fetchall()
    return _rows(rows, source)


def _postgres(source: PostgresLedger) -> collections.Counter[str]:
    psycopg = _library("psycopg", source)
    # Read-only, and bounded: a wrong query must not write, and a slow one must not hang a run.
    try:
        with psycopg.connect(
            source.url,
            connect_timeout=int(TIMEOUT_S),
            options=f"-c default_transaction_read_only=on -c statement_timeout={int(TIMEOUT_S)}s",
        ) as db:
            rows = db.execute(source.query.encode()).fetchall()
    except psycopg.Error as exc:
        raise _unreadable(source, exc) from exc
    return _rows(rows, source)


def _rows(rows: list[Any], source: SqliteLedger | PostgresLedger) -> collections.Counter[str]:
    """A query's rows: one ``id`` per processing, or ``id, count``."""
    if rows and len(rows[0]) not in (1, 2):
        raise LedgerSourceError(
            f"{describe(source)}: the query returns {len(rows[0])} columns; "
            "it must return id, or id and count"
        )
    if rows and len(rows[0]) == 2:
        return _counts(rows, source)
    return collections.Counter(_text(row[0]) for row in rows)


def _files(source: FileLedger) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for name in sorted(glob.glob(source.path)):
        text = Path(name).read_text(encoding="utf-8", errors="replace")
        counts.update(line.strip() for line in text.splitlines() if line.strip())
    return counts


def _kafka(source: KafkaOffsets) -> collections.Counter[str]:
    """The group's committed offsets, read without joining the group (a partition it never
    committed in has none, and counts as position 0)."""
    kafka = _library("confluent_kafka", source)
    reader = kafka.Consumer(
        {"bootstrap.servers": source.url, "group.id": source.group, "enable.auto.commit": False,
         "socket.connection.setup.timeout.ms": 1000, "log_level": 0}
    )  # fmt: skip
    try:
        topic = reader.list_topics(source.topic, timeout=TIMEOUT_S).topics[source.topic]
        if topic.error is not None:
            raise LedgerSourceError(f"{describe(source)}: {topic.error.str()}")
        partitions = [kafka.TopicPartition(source.topic, p) for p in topic.partitions]
        committed = reader.committed(partitions, timeout=TIMEOUT_S)
    except kafka.KafkaException as exc:
        raise _unreadable(source, exc) from exc
    finally:
        reader.close()
    return collections.Counter({str(p.partition): p.offset for p in committed if p.offset > 0})


def _http(source: HttpLedger) -> collections.Counter[str]:
    answer = httpx.get(source.url, timeout=TIMEOUT_S)
    answer.raise_for_status()
    body = answer.json()
    if isinstance(body, dict) and isinstance(body.get("ids"), list):
        body = body["ids"]
    if isinstance(body, list):
        return collections.Counter(_text(item) for item in body)
    if isinstance(body, dict):
        return _counts(body.items(), source)
    raise LedgerSourceError(
        f"{describe(source)} answered {type(body).__name__}; expected a list of ids, "
        '{"ids": [...]} or {id: count}'
    )


def _counts(pairs: Any, source: LedgerSource) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for key, value in pairs:
        try:
            times = int(float(_text(value)))
        except ValueError:
            raise LedgerSourceError(
                f"{describe(source)}: the count of {_text(key)!r} is {_text(value)!r}, not a number"
            ) from None
        if times > 0:
            counts[_text(key)] = times
    return counts


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
