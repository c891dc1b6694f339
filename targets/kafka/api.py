"""Producer API on Kafka: the job is a record on the topic QUEUE, on the partition of its key (a
job without one on any partition; KEYED=0, the weakness, ignores the key), accepted once
every in-sync replica has it (an idempotent producer, acks=all); with the outbox, its
notification is a record on NOTIFY_QUEUE, sent at the same time (two records, not one
transaction: a failure between them leaves a notification too many, never one too few). A
thread asks the broker for metadata every 250 ms; while it does not answer, the API answers 503
at once rather than waiting, and so do the requests that were waiting for their records. The
backlog is the lag of the workers' group GROUP. Everything else is ``producer.py``'s.
Env: KAFKA_ADDR, GROUP (default ``workers``), KEYED (1 | 0), and those of ``producer.py``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import producer
import service

HEALTH_EVERY_S = 0.25


class NotConnected(Exception):
    """The broker did not answer the last metadata request."""


class KafkaBroker:
    errors = (KafkaException, NotConnected, BufferError, asyncio.TimeoutError)

    def __init__(self, cfg: producer.Config) -> None:
        self.cfg = cfg
        self.keyed = service.env_flag("KEYED", True)
        self.producer = common.producer(producer.log, self._error)
        self.reader = common.group_reader(producer.log, service.env_str("GROUP", "workers"))
        self.up = False
        self.declared = False
        # Records not yet confirmed: failed at once when the broker stops answering, rather
        # than left to wait for librdkafka's own 5 s timeout.
        self.pending: set[asyncio.Future[Message]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop = threading.Event()
        threading.Thread(target=self._serve, name="kafka", daemon=True).start()

    def _serve(self) -> None:
        """Deliver the producer's callbacks, and find out whether the broker answers."""
        next_check = 0.0
        while not self.stop.is_set():
            self.producer.poll(0.05)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + HEALTH_EVERY_S
                try:
                    if not self.declared:
                        common.declare(producer.log, self.cfg.queue, self.cfg.notify_queue)
                        self.declared = True
                    self.producer.list_topics(self.cfg.queue, timeout=0.5)
                    self.up = True
                except KafkaException:
                    self.up = False
                    if self.loop is not None:
                        self.loop.call_soon_threadsafe(self._fail_pending)

    def _error(self, err: KafkaError) -> None:
        """All brokers down (the connection dropped): refuse at once, until the next metadata
        request answers."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.up = False
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self._fail_pending)

    def _fail_pending(self) -> None:
        for future in self.pending:
            if not future.done():
                future.set_exception(NotConnected("kafka stopped answering"))

    async def enqueue(self, fields: dict[str, str], notify: bool) -> str:
        if not self.up:
            raise NotConnected("kafka is not answering")
        self.loop = loop = asyncio.get_running_loop()
        records = [(self.cfg.queue, fields)]
        if notify:
            records.append((self.cfg.notify_queue, {"id": fields["id"]}))
        futures = []
        for topic, body in records:
            future: asyncio.Future[Message] = loop.create_future()

            def settle(err: KafkaError | None, msg: Message, future: Any = future) -> None:
                loop.call_soon_threadsafe(_settle, future, err, msg)

            # No key: records spread evenly over the partitions, as a hash of ids would not. A
            # job's key keeps the jobs of that key on one partition, in order.
            key = body.get("key") if self.keyed and topic == self.cfg.queue else None
            self.producer.produce(topic, service.encode(body), key=key, on_delivery=settle)
            futures.append(future)
        self.pending.update(futures)
        try:
            delivered = await asyncio.gather(*futures)
        finally:
            self.pending.difference_update(futures)
        first = delivered[0]
        return f"{first.partition()}:{first.offset()}"

    async def backlog(self) -> int:
        if not self.up:
            raise NotConnected("kafka is not answering")
        partitions = await asyncio.to_thread(common.lag, self.reader, self.cfg.queue)
        return sum(n for _, n, _ in partitions)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.to_thread(self.producer.flush, 2)
        self.reader.close()


def _settle(future: asyncio.Future[Message], err: KafkaError | None, msg: Message) -> None:
    if future.done():
        return
    if err is not None:
        future.set_exception(KafkaException(err))
    else:
        future.set_result(msg)


if __name__ == "__main__":
    sys.exit(producer.main(KafkaBroker, f"kafka {common.kafka_addr()}"))
