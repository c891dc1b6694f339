"""Producer API on RabbitMQ: the job is a persistent message published to the quorum queue QUEUE
with publisher confirms; with the outbox, its notification is published to NOTIFY_QUEUE at the
same time, and the job is accepted once the broker confirmed both (two publishes, not one
transaction: a failure between them leaves a notification too many, never one too few). The
backlog is the queue's ready count. Everything else is ``producer.py``'s.
Env: AMQP_ADDR, HEARTBEAT (seconds), and those of ``producer.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
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
                await channel.declare_queue(
                    queue, durable=True, arguments=common.queue_arguments(queue)
                )
                await channel.declare_queue(
                    self.cfg.notify_queue, durable=True, arguments={"x-queue-type": "quorum"}
                )
                self.channel = channel
            return self.channel

    async def enqueue(self, fields: dict[str, str], notify: bool) -> str:
        channel = await self._channel()
        messages = [(self.cfg.queue, fields)]
        if notify:
            messages.append((self.cfg.notify_queue, {"id": fields["id"]}))
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        service.encode(body),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=body["id"],
                    ),
                    routing_key=queue,
                    timeout=PUBLISH_TIMEOUT_S,
                )
                for queue, body in messages
            )
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
        self.connection = self.channel = None


if __name__ == "__main__":
    host, port = common.amqp_addr()
    sys.exit(producer.main(RabbitBroker, f"rabbitmq {host}:{port}"))
