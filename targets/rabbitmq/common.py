"""RabbitMQ plumbing shared by the RabbitMQ reference services: the address, the queues and how
they are declared, the message format.

The queue QUEUE is a durable quorum queue whose rejected messages, and those delivered more than
DELIVERY_LIMIT times (a job that crashes its worker every time), go to ``<QUEUE>.dlq``.
``<QUEUE>.delayed`` holds retries: each message expires after its backoff and is then
dead-lettered back into QUEUE. Every service declares what it uses, with the same arguments, so
that none depends on another having started first.
Each script of this folder puts it on ``sys.path`` and imports this module as ``common``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika
import service
from pika.exceptions import AMQPError, ConsumerCancelled

DEFAULT_AMQP_ADDR = "127.0.0.1:5672"
DELIVERY_LIMIT = 20


def amqp_addr() -> tuple[str, int]:
    """``AMQP_ADDR`` (``host:port``) as ``(host, port)``."""
    raw = service.env_str("AMQP_ADDR", DEFAULT_AMQP_ADDR)
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit():
        service.fail(f"AMQP_ADDR={raw!r} is not host:port")
    return host.strip("[]"), int(port)


def url(heartbeat: int) -> str:
    """An AMQP URL for aio-pika: guest on the default vhost, failing fast."""
    host, port = amqp_addr()
    return f"amqp://guest:guest@{host}:{port}/?heartbeat={heartbeat}&connection_timeout=2"


def parameters(heartbeat: int) -> pika.ConnectionParameters:
    """pika's settings: fail fast, and ``heartbeat`` seconds (0 = none) so that the broker
    notices a consumer that hangs and gives its unacknowledged messages to another."""
    host, port = amqp_addr()
    return pika.ConnectionParameters(
        host=host,
        port=port,
        heartbeat=heartbeat,
        socket_timeout=2,
        stack_timeout=5,
        blocked_connection_timeout=5,
        connection_attempts=1,
    )


def queue_arguments(queue: str) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": f"{queue}.dlq",
    }


def delayed_arguments(queue: str) -> dict[str, Any]:
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue}


def declare(channel: Any, queue: str) -> None:
    """Declare QUEUE, its dead-letter queue and its retry queue (pika)."""
    channel.queue_declare(f"{queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_declare(queue, durable=True, arguments=queue_arguments(queue))
    channel.queue_declare(f"{queue}.delayed", durable=True, arguments=delayed_arguments(queue))


@dataclass(frozen=True)
class Delivery:
    """One message as pika's consume generator yields it."""

    method: Any
    properties: Any
    body: bytes

    @property
    def tag(self) -> int:
        return int(self.method.delivery_tag)


class Consumer:
    """One consumer of QUEUE that reconnects until stopped, reading in batches; subclasses
    handle each batch.

    ``prefetch`` bounds what the broker hands it unacknowledged; with ``auto_ack`` the broker
    forgets each message as it sends it (no bound, and whatever the consumer holds dies with
    it). A batch is the first message to arrive (waiting up to 0.5 s, then ``idle`` runs) and
    whatever else the client has already received, up to ``batch``; after a batch shorter than
    that the consumer waits ``batch_wait_ms`` (the broker's deliveries buffering meanwhile, to
    be read in one go), so that the next one fills: a post per batch, not per message. A
    stopped (hung) consumer stops answering heartbeats, so the broker closes its connection
    after about ``heartbeat`` seconds and gives its messages to another.
    """

    def __init__(
        self,
        queue: str,
        prefetch: int,
        auto_ack: bool,
        heartbeat: int,
        stop: threading.Event,
        batch: int,
        batch_wait_ms: int,
    ) -> None:
        self.queue, self.prefetch, self.auto_ack = queue, prefetch, auto_ack
        self.heartbeat, self.stop = heartbeat, stop
        self.batch, self.batch_wait_ms = max(1, batch), batch_wait_ms
        self.connection: pika.BlockingConnection | None = None
        self.channel: Any = None
        self.errors_log = service.Throttled(logging.getLogger(type(self).__name__.lower()))

    def declare(self, channel: Any) -> None:
        declare(channel, self.queue)

    def handle(self, deliveries: list[Delivery]) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        """Called when 0.5 s passed without a delivery."""

    def connected(self) -> None:
        """Called on each new channel, before the first delivery."""

    def acknowledge(self, tag: int) -> None:
        """Acknowledge every message up to ``tag`` in one frame (``multiple``): messages are
        handled in order, so all those before it on this channel are done too."""
        self.channel.basic_ack(tag, multiple=True)

    def wait(self, seconds: float) -> None:
        """Sleep while still answering the broker's heartbeats."""
        if self.connection is not None and self.connection.is_open:
            self.connection.sleep(seconds)
        else:
            self.stop.wait(seconds)

    def next_batch(self, deliveries: Iterator[Any]) -> list[Delivery]:
        """The next delivery (an empty list after 0.5 s without one), with those already
        received behind it, up to ``batch``."""
        method, properties, body = self._next(deliveries)
        if method is None:
            return []
        batch = [Delivery(method, properties, body)]
        while len(batch) < self.batch and self.channel.get_waiting_message_count() > 0:
            method, properties, body = self._next(deliveries)
            if method is None:
                break
            batch.append(Delivery(method, properties, body))
        return batch

    @staticmethod
    def _next(deliveries: Iterator[Any]) -> Any:
        item = next(deliveries, None)
        if item is None:  # the generator ends when the broker cancels the consumer
            raise ConsumerCancelled("the broker cancelled the consumer")
        return item

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.connection = pika.BlockingConnection(parameters(self.heartbeat))
                self.channel = self.connection.channel()
                self.declare(self.channel)
                self.channel.confirm_delivery()
                self.channel.basic_qos(prefetch_count=self.prefetch)
                self.connected()
                deliveries = self.channel.consume(
                    self.queue, auto_ack=self.auto_ack, inactivity_timeout=0.5
                )
                while not self.stop.is_set():
                    batch = self.next_batch(deliveries)
                    if self.stop.is_set():
                        break
                    if not batch:
                        self.idle()
                        continue
                    self.handle(batch)
                    if len(batch) < self.batch:
                        # Not connection.sleep: deliveries pile up in the socket meanwhile and
                        # are read in one go, instead of waking the client for each. A pause
                        # this short misses no heartbeat.
                        self.stop.wait(self.batch_wait_ms / 1000)
            except (AMQPError, OSError) as exc:
                self.errors_log.warning(f"rabbitmq failed: {type(exc).__name__}: {exc}")
                self.stop.wait(0.5)
            finally:
                self.close()

    def close(self) -> None:
        if self.connection is not None and self.connection.is_open:
            with contextlib.suppress(AMQPError, OSError):
                self.connection.close()
        self.connection = None
