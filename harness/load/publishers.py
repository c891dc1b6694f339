"""The publishers a load can send straight into a broker with, by the name a target's
``load.publish.into`` gives: Redis (a stream or a list), RabbitMQ, Kafka, and NATS JetStream
(``jetstream``). What their answers mean is ``publishing``'s."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import gevent

# Imported as ``harness.load.publishers`` by the harness and its tests, and as a top-level
# module beside the locustfile by Locust, where it must not import the harness.
if TYPE_CHECKING or __package__:
    from harness.load import jetstream, publishing
else:
    import jetstream
    import publishing

Destination = publishing.Destination
Outcome = publishing.Outcome
Publisher = publishing.Publisher
_KAFKA_POLL_S = 0.002


# ------------------------------------------------------------------ Redis


class RedisPublisher(Publisher):
    """redis-py, one connection per user, never retried by the client: a retried write could be
    a duplicate the load generator made itself."""

    def __init__(self, to: Destination) -> None:
        super().__init__(to)
        self.client: Any = None

    def _client(self) -> Any:
        if self.client is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self.client = redis.Redis(
                host=self.to.host,
                port=self.to.port,
                socket_timeout=self.to.timeout_s,
                socket_connect_timeout=self.to.timeout_s,
                protocol=2,
                retry=Retry(NoBackoff(), 0),
                single_connection_client=True,
            )
        return self.client

    def write(self, client: Any, message_id: str, body: str) -> None:
        raise NotImplementedError

    def send(self, message_id: str, body: str) -> Outcome:
        import redis

        try:
            self.write(self._client(), message_id, body)
        except redis.exceptions.BusyLoadingError as exc:  # an error reply, though a subclass of
            return "fail", None, publishing.cause(exc)  # ConnectionError: LOADING, not executed
        except redis.exceptions.ResponseError as exc:  # an error reply: not executed
            return "fail", None, publishing.cause(exc)
        except (redis.exceptions.RedisError, OSError) as exc:  # no answer, or a broken link
            self.close()
            return "info", None, publishing.cause(exc)
        return "ok", None, None

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


class RedisStreamPublisher(RedisPublisher):
    """XADD NAME * id ID FIELD BODY."""

    def write(self, client: Any, message_id: str, body: str) -> None:
        client.xadd(self.to.name, {"id": message_id, self.to.field: body})


class RedisListPublisher(RedisPublisher):
    """LPUSH NAME BODY (a worker takes the oldest from the other end: BRPOP, BLMOVE ...)."""

    def write(self, client: Any, message_id: str, body: str) -> None:
        client.lpush(self.to.name, body)


# --------------------------------------------------------------- RabbitMQ


class RabbitMQPublisher(Publisher):
    """pika's BlockingConnection, with publisher confirms, publishing as mandatory and
    persistent. pika has no timeout for a confirm: a gevent timeout bounds the whole send, and
    a connection it interrupted is dropped, since a late confirm would be taken for the next
    message's."""

    def __init__(self, to: Destination) -> None:
        super().__init__(to)
        self.connection: Any = None
        self.channel: Any = None

    def _channel(self) -> Any:
        import pika

        if self.connection is None or not self.connection.is_open:
            self._drop()
            self.connection = pika.BlockingConnection(
                pika.ConnectionParameters(
                    host=self.to.host,
                    port=self.to.port,
                    connection_attempts=1,
                    socket_timeout=self.to.timeout_s,
                    stack_timeout=self.to.timeout_s,
                    blocked_connection_timeout=self.to.timeout_s,
                    # A user paces its sends and services the connection only while sending:
                    # heartbeats could lapse between two sends; the send's timeout stands in.
                    heartbeat=0,
                )
            )
        if self.channel is None or not self.channel.is_open:
            self.channel = self.connection.channel()
            self.channel.confirm_delivery()
        return self.channel

    def send(self, message_id: str, body: str) -> Outcome:
        import pika
        from pika import exceptions

        properties = pika.BasicProperties(
            message_id=message_id, delivery_mode=2, content_type=self.to.content_type
        )
        timeout = gevent.Timeout(self.to.timeout_s)
        timeout.start()
        try:
            self._channel().basic_publish(
                exchange=self.to.name,
                routing_key=self.to.routing_key,
                body=body.encode(),
                properties=properties,
                mandatory=True,
            )
        except exceptions.UnroutableError:
            return "fail", None, "unroutable: no queue is bound for it, the broker returned it"
        except exceptions.NackError:
            return "fail", None, "nacked by the broker"
        except exceptions.ChannelClosedByBroker as exc:
            self.channel = None
            # 404: no such exchange; 403: access refused. Either refused this publish; another
            # reason to close a channel says nothing of whether the message got in.
            definite = exc.reply_code in (403, 404)
            return ("fail" if definite else "info"), None, publishing.cause(exc)
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            self._drop()
            return "info", None, f"no confirm within {self.to.timeout_s:g} s"
        except (exceptions.AMQPError, OSError) as exc:
            self._drop()
            return "info", None, publishing.cause(exc)
        finally:
            timeout.close()
        return "ok", None, None

    def _drop(self) -> None:
        """Close the connection in a greenlet of its own: closing waits for the broker."""
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            gevent.spawn(publishing.close_quietly, connection, self.to.timeout_s)

    def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            publishing.close_quietly(connection, 1.0)


# ------------------------------------------------------------------ Kafka


_kafka_producers: dict[tuple[str, int], Any] = {}  # one per broker for all users of a process


def _definite_kafka_errors() -> frozenset[int]:
    """Errors that say the record was not written: refused by the broker, or never sent."""
    from confluent_kafka import KafkaError

    names = [
        # The client refused it before sending anything.
        "_UNKNOWN_TOPIC",
        "_UNKNOWN_PARTITION",
        "_INVALID_ARG",
        "_QUEUE_FULL",
        # The broker answered the produce request with a refusal.
        "INVALID_MSG",
        "MSG_SIZE_TOO_LARGE",
        "UNKNOWN_TOPIC_OR_PART",
        "TOPIC_EXCEPTION",
        "RECORD_LIST_TOO_LARGE",
        "NOT_ENOUGH_REPLICAS",
        "NOT_LEADER_FOR_PARTITION",
        "TOPIC_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "INVALID_REQUIRED_ACKS",
        "POLICY_VIOLATION",
        "INVALID_RECORD",
        "INVALID_TIMESTAMP",
        "UNSUPPORTED_FOR_MESSAGE_FORMAT",
    ]
    return frozenset(getattr(KafkaError, n) for n in names if hasattr(KafkaError, n))


class KafkaPublisher(Publisher):
    """confluent-kafka's Producer, acks=all, no retries (a retried record could be written
    twice). It runs C threads: a send never blocks in flush(), it polls for its own delivery
    report and sleeps 2 ms between polls so the other users go on. librdkafka reconnects by
    itself; one producer serves every user of the process."""

    def __init__(self, to: Destination) -> None:
        super().__init__(to)
        self.definite = _definite_kafka_errors()

    def _producer(self) -> Any:
        key = (self.to.host, self.to.port)
        if key not in _kafka_producers:
            from confluent_kafka import Producer

            timeout_ms = max(1, int(self.to.timeout_s * 1000))
            _kafka_producers[key] = Producer(
                {
                    "bootstrap.servers": f"{self.to.host}:{self.to.port}",
                    "client.id": "harness-load",
                    "acks": "all",
                    "enable.idempotence": False,
                    "retries": 0,
                    "message.timeout.ms": timeout_ms,
                    "request.timeout.ms": timeout_ms,
                    "reconnect.backoff.ms": 100,
                    "reconnect.backoff.max.ms": 1000,
                    "log.connection.close": False,
                }
            )
        return _kafka_producers[key]

    def send(self, message_id: str, body: str) -> Outcome:
        from confluent_kafka import KafkaException

        reports: list[Any] = []
        producer = self._producer()
        try:
            producer.produce(
                self.to.name,
                value=body.encode(),
                key=message_id.encode(),
                headers=[("content-type", self.to.content_type.encode())],
                on_delivery=lambda error, _message: reports.append(error),
            )
        except BufferError as exc:  # the client's queue is full: never sent
            return "fail", None, publishing.cause(exc)
        except KafkaException as exc:  # refused by the client before sending
            return "fail", None, publishing.cause(exc)
        deadline = time.monotonic() + self.to.timeout_s
        while not reports and time.monotonic() < deadline:
            producer.poll(0)  # runs the callbacks of delivered records, this one's or others'
            if not reports:
                gevent.sleep(_KAFKA_POLL_S)
        if not reports:
            return "info", None, f"no delivery report within {self.to.timeout_s:g} s"
        error = reports[0]
        if error is None:
            return "ok", None, None
        outcome = "fail" if error.code() in self.definite else "info"
        return outcome, None, publishing.error_text(f"{error.name()}: {error.str()}")


NatsPublisher = jetstream.NatsPublisher

PUBLISHERS: dict[str, type[Publisher]] = {
    "redis-stream": RedisStreamPublisher,
    "redis-list": RedisListPublisher,
    "rabbitmq": RabbitMQPublisher,
    "kafka": KafkaPublisher,
    "nats": NatsPublisher,
}
