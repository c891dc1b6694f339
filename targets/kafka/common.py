"""Kafka plumbing shared by the Kafka reference services: the address, clients that fail fast,
the topics and how they are declared, a consumer-group loop, and the lag of a group.

Each queue is a topic of PARTITIONS partitions; its retries wait in ``<queue>.delayed`` and its
dead letters go to ``<queue>.dlq``. Every service declares what it uses, with the same settings,
so that none depends on another having started first. Kafka keeps no per-message
acknowledgement: a group's committed offset per partition is what it has finished, so its lag
(log end offset minus committed offset) is the backlog, and whatever a dead member had read
past its last commit is read again by the member that takes its partitions over.
Each script of this folder puts it on ``sys.path`` and imports this module as ``common``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import service
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

DEFAULT_KAFKA_ADDR = "127.0.0.1:9092"
PARTITIONS = 4
TIMEOUT_S = 2.0


def kafka_addr() -> str:
    """``KAFKA_ADDR`` (``host:port``), checked."""
    raw = service.env_str("KAFKA_ADDR", DEFAULT_KAFKA_ADDR)
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit():
        service.fail(f"KAFKA_ADDR={raw!r} is not host:port")
    return raw


def config(
    log: logging.Logger, on_error: Callable[[KafkaError], None] | None = None, **extra: Any
) -> dict[str, Any]:
    """Settings every client shares: fail fast, reconnect fast, log through ``log`` (throttled),
    and tell ``on_error`` of every error, such as all brokers down."""
    throttled = service.Throttled(log)

    def error(err: KafkaError) -> None:
        throttled.warning(f"kafka: {err.str()}")
        if on_error is not None:
            on_error(err)

    return {
        "bootstrap.servers": kafka_addr(),
        "socket.connection.setup.timeout.ms": 2000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 500,
        "error_cb": error,
        "log_level": 3,
        **extra,
    }


def producer(log: logging.Logger, on_error: Callable[[KafkaError], None] | None = None) -> Producer:
    """Idempotent, every write on all in-sync replicas, given up after 5 s."""
    return Producer(
        config(log, on_error, acks="all", **{"enable.idempotence": True, "linger.ms": 1,
                                              "message.timeout.ms": 5000})
    )  # fmt: skip


def declare(log: logging.Logger, *topics: str) -> None:
    """Create the topics that do not exist yet."""
    admin = AdminClient(config(log))
    futures = admin.create_topics(
        [NewTopic(topic, PARTITIONS, 1) for topic in topics], operation_timeout=TIMEOUT_S
    )
    for future in futures.values():
        try:
            future.result(TIMEOUT_S * 2)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def declare_when_up(log: logging.Logger, stop: threading.Event, *topics: str) -> bool:
    """Declare the topics, trying again every 500 ms while the broker does not answer; False
    if stopped first."""
    throttled = service.Throttled(log)
    while not stop.is_set():
        try:
            declare(log, *topics)
            return True
        except KafkaException as exc:
            throttled.warning(f"declaring {', '.join(topics)} failed: {exc}")
            stop.wait(0.5)
    return False


def lag(
    client: Consumer, topic: str, timeout: float = TIMEOUT_S
) -> list[tuple[TopicPartition, int, int]]:
    """Per partition of ``topic``: the partition at the offset the client's group committed (or
    the log start, if none), its lag, and its log end offset."""
    metadata = client.list_topics(topic, timeout=timeout).topics[topic]
    if metadata.error is not None:
        raise KafkaException(metadata.error)
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
    committed = client.committed(partitions, timeout=timeout)
    result = []
    for partition in committed:
        low, high = client.get_watermark_offsets(partition, timeout=timeout, cached=False)
        start = max(partition.offset, low)
        result.append((TopicPartition(topic, partition.partition, start), high - start, high))
    return result


def group_reader(log: logging.Logger, group: str) -> Consumer:
    """A client that reads the committed offsets of ``group`` without joining it."""
    return Consumer(config(log, **{"group.id": group, "enable.auto.commit": False}))


class GroupConsumer:
    """One member of a consumer group that commits only when told, until stopped. What a member
    read and did not commit (it died, or hung past SESSION_TIMEOUT_MS) is read again by the
    member its partitions go to.

    ``run`` hands over a batch as soon as one record is there, with what arrived by then, up to
    ``batch``; after a batch shorter than that it waits ``batch_wait_ms`` before reading again,
    so that the next one fills: a post per batch, not per record. ``idle`` runs after a read
    that found nothing for 100 ms."""

    def __init__(
        self,
        log: logging.Logger,
        group: str,
        topic: str,
        session_timeout_ms: int,
        stop: threading.Event,
        batch_wait_ms: int = 0,
    ) -> None:
        self.log, self.topic, self.stop = log, topic, stop
        self.batch_wait_ms = batch_wait_ms
        self.joined = threading.Event()  # set once the group gave this member its partitions
        self.in_flight = False  # an asynchronous commit the broker has not answered yet
        # Per partition, the last record of the batch finished last, stored with the next one.
        self.held: dict[int, Message] = {}
        self.throttled = service.Throttled(log)
        self.consumer = Consumer(
            config(
                log,
                **{
                    "group.id": group,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": session_timeout_ms,
                    "heartbeat.interval.ms": max(500, session_timeout_ms // 6),
                    "on_commit": self._committed,
                },
            )
        )

    def commit(self) -> None:
        """Commit the offsets stored so far, and wait until the broker has them. A rebalance
        under way makes a failure a warning only."""
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            self._committed(exc.args[0], [])
        self.in_flight = False

    def done(self, messages: list[Message], hold: bool = False) -> None:
        """Mark ``messages`` finished: store the offsets past them (only these are ever
        committed, also on a rebalance or at close) and commit them. One commit at a time is
        in flight: while the broker answers within a batch's processing, commits never hold
        the worker up; once it answers slower than that (a slow link), the worker waits for
        each, as a consumer that commits after every batch does.

        With ``hold`` the last record of each partition in ``messages`` is held back: it is
        stored with the next call (or ``release``), one batch behind, so that the member
        always has finished records that are not committed yet. One record per partition is
        enough for that, and holding back more would count as backlog: a group's lag is all it
        has not committed."""
        if hold:
            last = {message.partition(): message for message in messages}
            messages = [
                *self.held.values(),
                *(m for m in messages if last[m.partition()] is not m),
            ]
            self.held = last
        if not messages:
            return
        self.consumer.store_offsets(offsets=self._past(messages))
        if self.in_flight:
            self.commit()
        else:
            self.in_flight = True
            self.consumer.commit(asynchronous=True)

    def release(self) -> None:
        """Store and commit the records held, if any."""
        held, self.held = list(self.held.values()), {}
        self.done(held)

    def _committed(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The broker answered a commit (served by the next read)."""
        self.in_flight = False
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            self.throttled.warning(f"commit failed: {err.str()}")

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.joined.set()

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # What this member finished stays finished for the next owner, the records held too:
        # they are stored while the partitions are still this member's, never after.
        held, self.held = list(self.held.values()), {}
        if held:
            with contextlib.suppress(KafkaException):
                self.consumer.store_offsets(offsets=self._past(held))
        self.commit()

    def _past(self, messages: list[Message]) -> list[TopicPartition]:
        """Per partition of ``messages``, the offset just past the last of them."""
        ends: dict[int, int] = {}
        for message in messages:
            ends[message.partition()] = max(ends.get(message.partition(), 0), message.offset() + 1)
        return [TopicPartition(self.topic, p, end) for p, end in ends.items()]

    def read(self, batch: int) -> list[Message]:
        """Up to ``batch`` records, as soon as there is one: what arrived by then joins it, but
        no record waits for the batch to fill (``consume`` would hold the first until it did)."""
        first = self.consumer.poll(0.1)
        if first is None:
            return []
        return [first, *self.consumer.consume(batch - 1, 0)] if batch > 1 else [first]

    def run(
        self,
        batch: int,
        handle: Callable[[list[Message]], None],
        idle: Callable[[], None] | None = None,
    ) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked)
        try:
            while not self.stop.is_set():
                messages = self.read(batch)
                good = [m for m in messages if m.error() is None]
                for message in messages:
                    if message.error() is not None:
                        self.throttled.warning(f"consume: {message.error().str()}")
                if good:
                    handle(good)
                elif idle is not None:
                    idle()
                if messages and len(messages) < batch and self.batch_wait_ms > 0:
                    self.stop.wait(self.batch_wait_ms / 1000)
        finally:
            self.consumer.close()
