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
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gevent

Outcome = tuple[str, int | None, str | None]  # ok|fail|info, a status code, what went wrong

_ERROR_CHARS = 200


def error_text(text: str) -> str:
    return text[:_ERROR_CHARS]


def cause(exc: BaseException) -> str:
    # pika's connection errors say nothing in str(), only in their arguments' repr().
    said = str(exc) or ", ".join(map(repr, exc.args))
    return error_text(f"{type(exc).__name__}: {said}")


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


def close_quietly(connection: Any, timeout_s: float) -> None:
    with contextlib.suppress(Exception), gevent.Timeout(timeout_s, False):
        connection.close()
