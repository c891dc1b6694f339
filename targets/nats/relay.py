"""Relay: owns delivering the API's outbox (the stream NOTIFY_QUEUE) to the notifier.

Fetches up to BATCH notifications at a time with its own durable pull consumer, POSTs the
batch's ids to NOTIFIER_URL/notify in one request and acknowledges the batch once the notifier
took it. A fetch that found fewer than BATCH is followed by a pause of BATCH_WAIT_MS, so that the
next one fills. A failed post is retried, same batch, after an exponential backoff with jitter
(RETRY_BASE_MS doubling up to RETRY_MAX_MS), for as long as it takes, telling the stream it is
still working on it: the notifier being down delays notifications, it never loses them nor
affects the API. At least once: the notifier counts distinct ids.
Env: NATS_ADDR, QUEUE (default ``notifications``), GROUP (default ``relay``), METRICS_PORT
(required), BATCH, BATCH_WAIT_MS, and those of ``notify.py``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
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
        self.group = service.env_str("GROUP", "relay")
        self.batch = max(1, service.env_int("BATCH", 50))
        self.batch_wait_ms = service.env_int("BATCH_WAIT_MS", 100)
        self.notifier = notify.NotifierClient(self.queue, log)

    async def run(self) -> None:
        consumer = ConsumerConfig(
            durable_name=self.group, ack_policy=AckPolicy.EXPLICIT, ack_wait=5, max_deliver=-1
        )
        await common.consume(
            log, self.queue, consumer, self.batch, self.batch_wait_ms, self.stop, self.deliver
        )

    async def deliver(self, messages: list[Msg]) -> None:
        ids = [i for m in messages if (i := service.decode(m.data).get("id"))]
        attempt = 1
        while ids and (delay := self.notifier.post(ids, attempt)) is not None:
            if self.stop.is_set():
                return  # unacknowledged: delivered again later
            for message in messages:
                await message.in_progress()
            await asyncio.sleep(delay)
            attempt += 1
        for message in messages:
            await message.ack()


def main() -> int:
    stop = service.install_stop_handler(interrupt=False)
    metrics_port = service.env_int("METRICS_PORT")
    relay = Relay(stop)
    start_http_server(metrics_port, addr=service.bind_addr())
    host, port = common.nats_addr()
    log.info(
        "relay consuming nats %s:%d stream=%s consumer=%s, notifier %s, metrics on "
        "http://127.0.0.1:%d/metrics",
        host,
        port,
        relay.queue,
        relay.group,
        relay.notifier.url,
        metrics_port,
    )
    common.run_until_stopped(relay.run, stop, log)
    relay.notifier.close()
    log.info("relay stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
