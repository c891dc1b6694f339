"""What every relay does, whatever its broker: post a batch of notifications' ids to the
notifier in one request, and say how long to wait before trying again when it did not take it.

The broker's relay owns reading the outbox and acknowledging; this module owns the post, its
backoff and its counters, so that a notifier outage looks the same on every broker.
Env: NOTIFIER_URL (required), RETRY_BASE_MS (default 100), RETRY_MAX_MS (default 2000).
"""

from __future__ import annotations

import logging

import httpx
import service
from prometheus_client import Counter

RELAYED = Counter(
    "harness_notifications_relayed_total", "Outbox entries the notifier accepted", ["queue"]
)
FAILURES = Counter(
    "harness_relay_failures_total", "Posts to the notifier that failed (retried)", ["queue"]
)


class NotifierClient:
    def __init__(self, queue: str, log: logging.Logger) -> None:
        self.url = service.env_str("NOTIFIER_URL").rstrip("/")
        self.retry_base_ms = service.env_int("RETRY_BASE_MS", 100)
        self.retry_max_ms = service.env_int("RETRY_MAX_MS", 2000)
        self.http = httpx.Client(timeout=2.0)
        self.relayed = RELAYED.labels(queue=queue)
        self.failures = FAILURES.labels(queue=queue)
        self.errors_log = service.Throttled(log)

    def post(self, job_ids: list[str], attempt: int) -> float | None:
        """Attempt number ``attempt`` (from 1) at delivering ``job_ids`` in one request: None if
        the notifier took them all, else the seconds to wait (exponential backoff with jitter)
        before the next attempt. One request per batch, not per id: a post costs both sides far
        more than an id in it."""
        try:
            answer = self.http.post(f"{self.url}/notify", json={"ids": job_ids})
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            self.failures.inc()
            delay = service.backoff_seconds(attempt, self.retry_base_ms, self.retry_max_ms)
            self.errors_log.warning(f"notifier failed, retry in {delay:.2f}s: {exc!r}")
            return delay
        self.relayed.inc(len(job_ids))
        return None

    def close(self) -> None:
        self.http.close()
