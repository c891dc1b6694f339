"""Relay: owns delivering the API's outbox (the topic NOTIFY_QUEUE) to the notifier.

Reads notifications as the consumer group GROUP, POSTs each id to NOTIFIER_URL/notify and
commits a batch once the notifier took all of it. A failed post is retried, same record, after
an exponential backoff with jitter (RETRY_BASE_MS doubling up to RETRY_MAX_MS), for as long as
it takes: the notifier being down delays notifications, it never loses them nor affects the
API. At least once: the notifier counts distinct ids.
Env: KAFKA_ADDR, QUEUE (default ``notifications``), GROUP (default ``relay``), NOTIFIER_URL
(required), METRICS_PORT (required), BATCH, RETRY_BASE_MS (default 100), RETRY_MAX_MS (default
2000).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import httpx
from confluent_kafka import Message
from prometheus_client import Counter, start_http_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import service

log = service.setup_logging("relay")
errors_log = service.Throttled(log)

RELAYED = Counter(
    "harness_notifications_relayed_total", "Outbox entries the notifier accepted", ["queue"]
)
FAILURES = Counter(
    "harness_relay_failures_total", "Posts to the notifier that failed (retried)", ["queue"]
)


class Relay:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.queue = service.env_str("QUEUE", "notifications")
        self.notifier_url = service.env_str("NOTIFIER_URL").rstrip("/")
        self.batch = service.env_int("BATCH", 50)
        self.retry_base_ms = service.env_int("RETRY_BASE_MS", 100)
        self.retry_max_ms = service.env_int("RETRY_MAX_MS", 2000)
        self.http = httpx.Client(timeout=2.0)
        self.relayed = RELAYED.labels(queue=self.queue)
        self.failures = FAILURES.labels(queue=self.queue)
        self.group = common.GroupConsumer(
            log, service.env_str("GROUP", "relay"), self.queue, 6000, stop
        )

    def deliver(self, messages: list[Message]) -> None:
        for message in messages:
            job_id = service.decode(message.value() or b"").get("id")
            attempt = 0
            while job_id:
                try:
                    answer = self.http.post(f"{self.notifier_url}/notify", json={"id": job_id})
                    answer.raise_for_status()
                    self.relayed.inc()
                    break
                except httpx.HTTPError as exc:
                    attempt += 1
                    self.failures.inc()
                    delay = service.backoff_seconds(attempt, self.retry_base_ms, self.retry_max_ms)
                    errors_log.warning(f"notifier failed, retry in {delay:.2f}s: {exc!r}")
                    if self.stop.wait(delay):
                        return  # not committed: read again later
        self.group.commit()


def main() -> int:
    stop = service.install_stop_handler(interrupt=False)
    metrics_port = service.env_int("METRICS_PORT")
    relay = Relay(stop)
    start_http_server(metrics_port, addr="127.0.0.1")
    log.info(
        "relay consuming kafka %s topic=%s, notifier %s, metrics on http://127.0.0.1:%d/metrics",
        common.kafka_addr(),
        relay.queue,
        relay.notifier_url,
        metrics_port,
    )
    if common.declare_when_up(log, stop, relay.queue):
        relay.group.run(relay.batch, relay.deliver)
    relay.http.close()
    log.info("relay stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
