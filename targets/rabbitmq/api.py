"""Producer API on RabbitMQ: the job is a persistent message published to the quorum queue QUEUE
with publisher confirms. With the outbox, the job is published once, to the fanout exchange
``<QUEUE>.outbox``, which routes it to both QUEUE and NOTIFY_QUEUE: one publish and one confirm
for the two, and the broker confirms it only once both queues hold it (the relay reads the id
from the job's body). The backlog is the queue's ready count. Everything else is
``producer.py``'s.
Env: AMQP_ADDR, HEARTBEAT (seconds), and those of ``producer.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.exceptions import AMQPError

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import producer
import service

PUBLISH_TIMEOUT_S = 5


class RabbitBroker:
    errors = (AMQPError, OSError, asyncio.TimeoutError)

    def __init__(self, cfg: producer.Config) -> None:
        self.cfg = cfg
        self.url = common.url(service.env_int("HEARTBEAT", 5))
        self.connection: AbstractConnection | None = None
        self.channel: AbstractChannel | None = None
        self.outbox: AbstractExchange | None = None
        self.lock = asyncio.Lock()

    async def _channel(self) -> AbstractChannel:
        """The publishing channel, (re)connected when the last one was closed."""
        async with self.lock:
            if self.channel is None or self.channel.is_closed:
                await self.close()
                self.connection = await aio_pika.connect(self.url, timeout=3)
                channel = await self.connection.channel(publisher_confirms=True)
                queue = self.cfg.queue
                await channel.declare_queue(
                    f"{queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"}
                )
                jobs = await channel.declare_queue(
                    queue, durable=True, arguments=common.queue_arguments(queue)
                )
                notifications = await channel.declare_queue(
                    self.cfg.notify_queue, durable=True, arguments={"x-queue-type": "quorum"}
                )
                outbox = await channel.declare_exchange(
                    f"{queue}.outbox", aio_pika.ExchangeType.FANOUT, durable=True
                )
                await jobs.bind(outbox)
                await notifications.bind(outbox)
                self.channel, self.outbox = channel, outbox
            return self.channel

    async def enqueue(self, fields: dict[str, str], notify: bool) -> str:
        channel = await self._channel()
        exchange = self.outbox if notify and self.outbox is not None else channel.default_exchange
        await exchange.publish(
            aio_pika.Message(
                service.encode(fields),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=fields["id"],
            ),
            routing_key=self.cfg.queue,  # the fanout exchange ignores it
            timeout=PUBLISH_TIMEOUT_S,
        )
        return fields["id"]

    async def backlog(self) -> int:
        channel = await self._channel()
        queue = await channel.declare_queue(self.cfg.queue, passive=True, timeout=2)
        result = queue.declaration_result
        return int(result.message_count or 0)

    async def close(self) -> None:
        if self.connection is not None and not self.connection.is_closed:
            with contextlib.suppress(*self.errors):
                await self.connection.close()
        self.connection = self.channel = self.outbox = None


if __name__ == "__main__":
    host, port = common.amqp_addr()
    sys.exit(producer.main(RabbitBroker, f"rabbitmq {host}:{port}"))
