"""Sends straight into a broker, for the load of a system without an HTTP producer.

Imported by ``locustfile.py`` as a top-level module (Locust puts the locustfile's folder on the
path while it imports it), so, like the locustfile, it must never import harness; it runs in
Locust's gevent-patched interpreter, where every socket cooperates with the other users.

One publisher per Locust user, each with its own connection (Kafka's producer is shared by
the users of a process), made on the first send and again on the send after one broke. A send
answers what it became, with the same meaning as an HTTP producer's answer:

- ``ok``: the broker durably accepted it (XADD or LPUSH returned; RabbitMQ confirmed it,
  published as mandatory; Kafka's delivery report, acks=all, has no error; JetStream acked it);
- ``fail``: the broker refused it, so it was not enqueued (a Redis error reply; a RabbitMQ
  nack, a return as unroutable, or a channel closed as the exchange does not exist; a Kafka
  error that says the record was not written; a JetStream error answer, or no responders:
  no stream listens on the subject);
- ``info``: no answer within the timeout, or the connection broke: it may or may not be there.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gevent

Outcome = tuple[str, int | None, str | None]  # ok|fail|info, a status code, what went wrong

_ERROR_CHARS = 200
_KAFKA_POLL_S = 0.002


def _error(text: str) -> str:
    return text[:_ERROR_CHARS]


def _cause(exc: BaseException) -> str:
    # pika's connection errors say nothing in str(), only in their arguments' repr().
    said = str(exc) or ", ".join(map(repr, exc.args))
    return _error(f"{type(exc).__name__}: {said}")


@dataclass(frozen=True)
class Destination:
    """Where and how one load publishes: the broker's address, and the ``--harness-*`` options."""

    host: str
    port: int
    name: str
    routing_key: str
    field: str
    content_type: str
    timeout_s: float

    @classmethod
    def of(cls, url: str, config: Any) -> Destination:
        """From Locust's ``--host`` (``redis://127.0.0.1:6379``) and the locustfile's config."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"the broker's address {url!r} has no host and port")
        return cls(
            parts.hostname,
            parts.port,
            config.publish_name,
            config.publish_routing_key,
            config.publish_field,
            config.content_type,
            config.timeout_s,
        )


class Publisher:
    """One connection to a broker; a send after a broken one connects again."""

    def __init__(self, to: Destination) -> None:
        self.to = to

    def send(self, message_id: str, body: str) -> Outcome:
        raise NotImplementedError

    def close(self) -> None:
        """Let the connection go; never raises."""


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
            return "fail", None, _cause(exc)  # ConnectionError: LOADING, not executed
        except redis.exceptions.ResponseError as exc:  # an error reply: not executed
            return "fail", None, _cause(exc)
        except (redis.exceptions.RedisError, OSError) as exc:  # no answer, or a broken link
            self.close()
            return "info", None, _cause(exc)
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
            return ("fail" if definite else "info"), None, _cause(exc)
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            self._drop()
            return "info", None, f"no confirm within {self.to.timeout_s:g} s"
        except (exceptions.AMQPError, OSError) as exc:
            self._drop()
            return "info", None, _cause(exc)
        finally:
            timeout.close()
        return "ok", None, None

    def _drop(self) -> None:
        """Close the connection in a greenlet of its own: closing waits for the broker."""
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            gevent.spawn(_close_quietly, connection, self.to.timeout_s)

    def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            _close_quietly(connection, 1.0)


def _close_quietly(connection: Any, timeout_s: float) -> None:
    with contextlib.suppress(Exception), gevent.Timeout(timeout_s, False):
        connection.close()


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
            return "fail", None, _cause(exc)
        except KafkaException as exc:  # refused by the client before sending
            return "fail", None, _cause(exc)
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
        return outcome, None, _error(f"{error.name()}: {error.str()}")


# ------------------------------------------------------------------- NATS


class NatsProtocolError(Exception):
    """The server answered something this client does not understand, or -ERR."""


class NatsPublisher(Publisher):
    """A JetStream publish over NATS' text protocol, on a plain (gevent) socket: nats-py needs
    asyncio, which does not mix with gevent. HPUB with a reply inbox and the headers Nats-Msg-Id
    (so JetStream drops a second message with the same id within its duplicate window) and
    Content-Type; the answer is the stream's ack, a JetStream error, or a 503 status: no
    responders, no stream listens on the subject."""

    def __init__(self, to: Destination) -> None:
        super().__init__(to)
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.inbox = ""
        self.replies = itertools.count()

    def send(self, message_id: str, body: str) -> Outcome:
        deadline = time.monotonic() + self.to.timeout_s
        try:
            sock = self.sock or self._connect(deadline)
            reply = f"{self.inbox}.{next(self.replies)}"
            headers = (
                f"NATS/1.0\r\nNats-Msg-Id: {message_id}\r\n"
                f"Content-Type: {self.to.content_type}\r\n\r\n"
            ).encode()
            payload = body.encode()
            size = len(headers) + len(payload)
            command = f"HPUB {self.to.name} {reply} {len(headers)} {size}\r\n".encode()
            sock.sendall(command + headers + payload + b"\r\n")
            return self._answer(reply, deadline)
        except (OSError, NatsProtocolError) as exc:
            self.close()
            timed_out = isinstance(exc, TimeoutError | socket.timeout)
            what = f"no answer within {self.to.timeout_s:g} s" if timed_out else _cause(exc)
            return "info", None, what

    def _connect(self, deadline: float) -> socket.socket:
        sock = socket.create_connection((self.to.host, self.to.port), timeout=self.to.timeout_s)
        self.sock, self.buffer = sock, b""
        info = self._line(deadline)
        if not info.startswith(b"INFO "):
            raise NatsProtocolError(f"expected INFO, got {info[:80]!r}")
        if not json.loads(info[5:]).get("headers"):
            raise NatsProtocolError("the server does not support headers (NATS 2.2 or later)")
        connect = {
            "verbose": False,
            "pedantic": False,
            "name": "harness-load",
            "lang": "python-gevent",
            "version": "1",
            "protocol": 1,
            "headers": True,
            "no_responders": True,
        }
        self.inbox = f"_INBOX.{secrets.token_hex(8)}"
        sock.sendall(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        while (line := self._line(deadline)) != b"PONG":
            if line.startswith(b"-ERR"):
                raise NatsProtocolError(line.decode(errors="replace"))
        sock.sendall(f"SUB {self.inbox}.* 1\r\n".encode())
        return sock

    def _answer(self, reply: str, deadline: float) -> Outcome:
        """Read until the answer to reply comes; late answers to earlier sends are skipped."""
        assert self.sock is not None
        while True:
            line = self._line(deadline)
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
                continue
            if line.startswith(b"-ERR"):
                text = line.decode(errors="replace")
                if "permissions violation" in text.lower():  # the publish itself was refused
                    return "fail", None, _error(text)
                raise NatsProtocolError(text)
            if not line.startswith((b"MSG ", b"HMSG ")):
                continue  # PONG, +OK, INFO updates
            parts = line.decode().split()
            with_headers = parts[0] == "HMSG"
            total = int(parts[-1])
            header_size = int(parts[-2]) if with_headers else 0
            data = self._bytes(total + 2, deadline)[:total]
            if parts[1] != reply:
                continue
            return _jetstream_answer(data[:header_size], data[header_size:])

    def _line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buffer:
            self._read(deadline)
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _bytes(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            self._read(deadline)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read(self, deadline: float) -> None:
        assert self.sock is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        sock, self.sock, self.buffer = self.sock, None, b""
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _jetstream_answer(headers: bytes, payload: bytes) -> Outcome:
    """ok: the stream's ack (``{"stream", "seq"}``, a duplicate too: stored before); fail: a
    JetStream error, or status 503 (no responders: no stream listens on the subject)."""
    status_line = headers.split(b"\r\n", 1)[0].decode(errors="replace")
    status = status_line.split()[1] if len(status_line.split()) > 1 else ""
    if status == "503":
        return "fail", 503, "no responders: no stream listens on the subject"
    if status:
        return "info", int(status) if status.isdigit() else None, _error(status_line)
    try:
        answer = json.loads(payload)
    except ValueError:
        return "info", None, _error(f"not a JetStream answer: {payload[:80]!r}")
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        code = error.get("code")
        text = f"JetStream error {code}/{error.get('err_code')}: {error.get('description')}"
        return "fail", code if isinstance(code, int) else None, _error(text)
    if isinstance(answer, dict) and "stream" in answer and "seq" in answer:
        return "ok", None, None
    return "info", None, _error(f"not a JetStream answer: {payload[:80]!r}")


PUBLISHERS: dict[str, type[Publisher]] = {
    "redis-stream": RedisStreamPublisher,
    "redis-list": RedisListPublisher,
    "rabbitmq": RabbitMQPublisher,
    "kafka": KafkaPublisher,
    "nats": NatsPublisher,
}
