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
from typing import Any

import pika
import service
from pika.exceptions import AMQPError

DEFAULT_AMQP_ADDR = "127.0.0.1:5672"
DELIVERY_LIMIT = 20
ACK_EVERY = 10


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


class Consumer:
    """One consumer of QUEUE that reconnects until stopped; subclasses handle each delivery.

    ``prefetch`` bounds what the broker hands it unacknowledged; with ``auto_ack`` the broker
    forgets each message as it sends it (no bound, and whatever the consumer holds dies with
    it). A stopped (hung) consumer stops answering heartbeats, so the broker closes its
    connection after about ``heartbeat`` seconds and gives its messages to another.
    """

    def __init__(
        self, queue: str, prefetch: int, auto_ack: bool, heartbeat: int, stop: threading.Event
    ) -> None:
        self.queue, self.prefetch, self.auto_ack = queue, prefetch, auto_ack
        self.heartbeat, self.stop = heartbeat, stop
        self.connection: pika.BlockingConnection | None = None
        self.channel: Any = None
        self.done = 0
        self.errors_log = service.Throttled(logging.getLogger(type(self).__name__.lower()))

    def declare(self, channel: Any) -> None:
        declare(channel, self.queue)

    def handle(self, method: Any, properties: Any, body: bytes) -> None:
        raise NotImplementedError

    def acknowledge(self, tag: int) -> None:
        """Acknowledge every message up to ``tag`` at once, once ACK_EVERY are done or none
        waits: messages are handled in order, so all those before it are done too."""
        self.done += 1
        if self.done >= ACK_EVERY or self.channel.get_waiting_message_count() == 0:
            self.channel.basic_ack(tag, multiple=True)
            self.done = 0

    def wait(self, seconds: float) -> None:
        """Sleep while still answering the broker's heartbeats."""
        if self.connection is not None and self.connection.is_open:
            self.connection.sleep(seconds)
        else:
            self.stop.wait(seconds)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.connection = pika.BlockingConnection(parameters(self.heartbeat))
                self.channel = self.connection.channel()
                self.done = 0  # handled since the last acknowledgement, on this channel
                self.declare(self.channel)
                self.channel.confirm_delivery()
                self.channel.basic_qos(prefetch_count=self.prefetch)
                deliveries = self.channel.consume(
                    self.queue, auto_ack=self.auto_ack, inactivity_timeout=0.5
                )
                for method, properties, body in deliveries:
                    if self.stop.is_set():
                        break
                    if method is not None:
                        self.handle(method, properties, body)
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
