"""Relay: owns delivering the API's outbox (the quorum queue NOTIFY_QUEUE) to the notifier.

Takes up to PREFETCH notifications at a time (default 2 x BATCH) and handles them in batches of
up to BATCH: the first to arrive and those the client already received behind it. It POSTs a
batch's ids to NOTIFIER_URL/notify in one request and acknowledges the batch in one frame once
the notifier took it. A batch shorter than BATCH is followed by a pause of BATCH_WAIT_MS, so that
the next one fills. A failed post is retried, same batch, after an exponential backoff with
jitter (RETRY_BASE_MS doubling up to RETRY_MAX_MS), for as long as it takes: the notifier being
down delays notifications, it never loses them nor affects the API. At least once: the notifier
counts distinct ids.
Env: AMQP_ADDR, QUEUE (default ``notifications``), METRICS_PORT (required), BATCH,
BATCH_WAIT_MS, PREFETCH, HEARTBEAT, and those of ``notify.py``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from prometheus_client import start_http_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import notify
import service

log = service.setup_logging("relay")


class Relay(common.Consumer):
    def __init__(self, stop: threading.Event) -> None:
        queue = service.env_str("QUEUE", "notifications")
        batch = max(1, service.env_int("BATCH", 50))
        super().__init__(
            queue, service.env_int("PREFETCH", 2 * batch), False, service.env_int("HEARTBEAT", 4),
            stop, batch, service.env_int("BATCH_WAIT_MS", 100),
        )  # fmt: skip
        self.notifier = notify.NotifierClient(queue, log)

    def declare(self, channel: Any) -> None:
        channel.queue_declare(self.queue, durable=True, arguments={"x-queue-type": "quorum"})

    def handle(self, deliveries: list[common.Delivery]) -> None:
        ids = [i for d in deliveries if (i := service.decode(d.body).get("id"))]
        attempt = 1
        while ids and (delay := self.notifier.post(ids, attempt)) is not None:
            if self.stop.is_set():
                return  # unacknowledged: delivered again later
            self.wait(delay)
            attempt += 1
        self.acknowledge(deliveries[-1].tag)


def main() -> int:
    stop = service.install_stop_handler(interrupt=True)
    relay: Relay | None = None
    try:
        metrics_port = service.env_int("METRICS_PORT")
        relay = Relay(stop)
        start_http_server(metrics_port, addr=service.bind_addr())
        host, port = common.amqp_addr()
        log.info(
            "relay consuming rabbitmq %s:%d queue=%s, notifier %s, metrics on "
            "http://127.0.0.1:%d/metrics",
            host,
            port,
            relay.queue,
            relay.notifier.url,
            metrics_port,
        )
        relay.run()
    except service.Shutdown:
        pass
    stop.set()
    if relay is not None:
        relay.close()
        relay.notifier.close()
    log.info("relay stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
