"""Relay: owns delivering the API's outbox (the topic NOTIFY_QUEUE) to the notifier.

Reads batches of up to BATCH notifications as the consumer group GROUP, POSTs a batch's ids to
NOTIFIER_URL/notify in one request and commits the batch once the notifier took it. A batch
shorter than BATCH is followed by a pause of BATCH_WAIT_MS, so that the next one fills. A failed
post is retried, same batch, after an exponential backoff with jitter (RETRY_BASE_MS doubling up
to RETRY_MAX_MS), for as long as it takes: the notifier being down delays notifications, it
never loses them nor affects the API. At least once: the notifier counts distinct ids.
Env: KAFKA_ADDR, QUEUE (default ``notifications``), GROUP (default ``relay``), METRICS_PORT
(required), BATCH, BATCH_WAIT_MS, and those of ``notify.py``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from confluent_kafka import Message
from prometheus_client import start_http_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import notify
import service

log = service.setup_logging("relay")


class Relay:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.queue = service.env_str("QUEUE", "notifications")
        self.batch = max(1, service.env_int("BATCH", 50))
        self.notifier = notify.NotifierClient(self.queue, log)
        self.group = common.GroupConsumer(
            log, service.env_str("GROUP", "relay"), self.queue, 6000, stop,
            service.env_int("BATCH_WAIT_MS", 100),
        )  # fmt: skip

    def deliver(self, messages: list[Message]) -> None:
        ids = [i for m in messages if (i := service.decode(m.value() or b"").get("id"))]
        attempt = 1
        while ids and (delay := self.notifier.post(ids, attempt)) is not None:
            if self.stop.wait(delay):
                return  # not committed: read again later
            attempt += 1
        self.group.done(messages)


def main() -> int:
    stop = service.install_stop_handler(interrupt=False)
    metrics_port = service.env_int("METRICS_PORT")
    relay = Relay(stop)
    start_http_server(metrics_port, addr=service.bind_addr())
    log.info(
        "relay consuming kafka %s topic=%s, notifier %s, metrics on http://127.0.0.1:%d/metrics",
        common.kafka_addr(),
        relay.queue,
        relay.notifier.url,
        metrics_port,
    )
    if common.declare_when_up(log, stop, relay.queue):
        relay.group.run(relay.batch, relay.deliver)
    relay.notifier.close()
    log.info("relay stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
