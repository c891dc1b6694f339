"""What every worker does, whatever its broker: process a job, post a batch to the sink, count.

The broker's worker owns consuming, acknowledging, retrying and dead-lettering; this module owns
the job itself, so that a job costs the same and is recorded the same on every broker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx
import service
from prometheus_client import Counter, Histogram

HANDLED = Counter(
    "harness_worker_messages_total", "Messages this worker handed to the sink", ["queue"]
)
FAILED = Counter(
    "harness_messages_failed_total",
    "Failed attempts: processing raised, or the sink refused the message",
    ["queue"],
)
RETRIED = Counter(
    "harness_messages_retried_total",
    "Retries scheduled, and messages redelivered from another or a dead consumer",
    ["queue"],
)
DEAD_LETTERED = Counter(
    "harness_dlq_messages_total", "Messages moved to the dead-letter queue", ["queue"]
)
BATCH_SECONDS = Histogram("harness_worker_batch_seconds", "Time to handle one batch")
UNRECORDED_LOG = service.Throttled(logging.getLogger("worker"))


@dataclass(frozen=True)
class Settings:
    """What every worker is told, whatever its broker; a broker's worker adds its own.
    Env: QUEUE, CONSUMER, SINK_URL (required), METRICS_PORT (required), PROCESS_MS, ACK_MODE
    (after | before), RETRY_BASE_MS, RETRY_MAX_MS, MAX_ATTEMPTS, DLQ (1 | 0)."""

    queue: str
    consumer: str
    sink_url: str
    metrics_port: int
    process_ms: int
    ack_after: bool
    retry_base_ms: int
    retry_max_ms: int
    max_attempts: int
    dlq: bool

    @staticmethod
    def from_env_shared() -> dict[str, Any]:
        """The shared fields, read from the environment, for a subclass's constructor."""
        return {
            "queue": service.env_str("QUEUE", "jobs"),
            "consumer": service.env_str("CONSUMER", f"worker-{os.getpid()}"),
            "sink_url": service.env_str("SINK_URL").rstrip("/"),
            "metrics_port": service.env_int("METRICS_PORT"),
            "process_ms": service.env_int("PROCESS_MS", 2),
            "ack_after": service.env_choice("ACK_MODE", "after", ("after", "before")) == "after",
            "retry_base_ms": service.env_int("RETRY_BASE_MS", 200),
            "retry_max_ms": service.env_int("RETRY_MAX_MS", 2000),
            "max_attempts": max(1, service.env_int("MAX_ATTEMPTS", 4)),
            "dlq": service.env_flag("DLQ", True),
        }


class ProcessingError(Exception):
    """Processing a message failed; it is retried later, or dead-lettered."""


def process(fields: dict[str, str], process_ms: int) -> None:
    """The job: PROCESS_MS of work; a poison job always fails."""
    time.sleep(process_ms / 1000)
    if fields.get("poison") == "1":
        raise ProcessingError("poison message")


def attempt_of(fields: dict[str, str]) -> int:
    try:
        return max(1, int(fields.get("attempt", "1")))
    except ValueError:
        return 1


def describe(
    broker_id: str,
    fields: dict[str, str],
    consumer: str,
    enqueued_at: float,
    started_at: float,
    failed: bool = False,
) -> dict[str, Any]:
    """The sink's view of one delivery: when its processing began, and whether it failed;
    tolerant of messages not written by the API, whose enqueue time falls back on
    ``enqueued_at`` (the broker's own)."""
    with contextlib.suppress(KeyError, ValueError):
        enqueued_at = float(fields["enqueued_at"])
    message_id = fields.get("id") or broker_id
    described = {"id": message_id, "enqueued_at": enqueued_at, "consumer": consumer}
    return {**described, "started_at": started_at, **({"failed": True} if failed else {})}


def processed(messages: list[dict[str, Any]]) -> int:
    """How many of a batch's deliveries were processed: the failed ones were counted when they
    failed."""
    return sum(1 for message in messages if not message.get("failed"))


def dead_lettered(http: httpx.Client, sink_url: str, message_id: str, consumer: str) -> None:
    """Tell the sink a message is in the dead-letter queue, once the broker has it there, so
    that the ledger counts it as dead-lettered and not as lost. A sink that does not answer
    costs only this record: the message stays in the dead-letter queue, and is counted lost."""
    try:
        message = {"id": message_id, "consumer": consumer}
        answer = http.post(f"{sink_url}/dead_lettered", json={"messages": [message]})
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        UNRECORDED_LOG.warning(f"dead letter {message_id} not recorded at the sink: {exc!r}")


def record(http: httpx.Client, sink_url: str, messages: list[dict[str, Any]]) -> int:
    """Post a batch of deliveries (processed, or failed) to the sink in one request; how many
    of their ids had been applied before. Raises httpx.HTTPError if the sink did not take them
    (then it took none: the sink writes a batch whole or not at all)."""
    answer = http.post(f"{sink_url}/processed", json={"messages": messages})
    answer.raise_for_status()
    return int(answer.json().get("duplicates") or 0)
