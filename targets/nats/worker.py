"""Worker: owns consuming the stream QUEUE as one member of the durable pull consumer GROUP, at
least once.

Fetches up to BATCH messages at a time. Each is processed (PROCESS_MS), posted to the sink, then
acknowledged (ACK_MODE=after); with ACK_MODE=before (the weakness) the batch is acknowledged as
soon as it is fetched, so a worker that dies mid-batch loses the rest of it. A message not
acknowledged within ACK_WAIT_MS (a worker that died or hangs) is delivered again, to any member.
A sink that fails is not a message failure: the worker keeps the message, tells the stream it is
still working on it, and posts it again every 200 ms. A message whose processing fails (a poison
job) is negatively acknowledged with a delay of its backoff (RETRY_BASE_MS doubling up to
RETRY_MAX_MS, with jitter). The consumer delivers a message at most MAX_ATTEMPTS times; the
stream then announces it (the MAX_DELIVERIES advisory), and one worker of the queue group
``dead-letter`` copies it to ``<QUEUE>.dlq`` and deletes it from the stream. DLQ=0 (the weakness)
delivers it forever. A message delivered more than once is counted as a retry.
Env: NATS_ADDR, QUEUE, GROUP (default ``workers``), CONSUMER, SINK_URL (required), METRICS_PORT
(required), PROCESS_MS, BATCH, ACK_WAIT_MS, ACK_MODE (after | before), RETRY_BASE_MS,
RETRY_MAX_MS, MAX_ATTEMPTS, DLQ (1 | 0).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client import start_http_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import service
import work

log = service.setup_logging("worker")
errors_log = service.Throttled(log)
failures_log = service.Throttled(log)


@dataclass(frozen=True)
class Config(work.Settings):
    group: str
    batch: int
    ack_wait_ms: int

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            **work.Settings.from_env_shared(),
            group=service.env_str("GROUP", "workers"),
            batch=service.env_int("BATCH", 10),
            ack_wait_ms=service.env_int("ACK_WAIT_MS", 5000),
        )


class Worker:
    def __init__(self, cfg: Config, stop: threading.Event) -> None:
        self.cfg, self.stop = cfg, stop
        self.http = httpx.Client(timeout=5.0)
        self.js: JetStreamContext | None = None
        self.handled = work.HANDLED.labels(queue=cfg.queue)
        self.failed = work.FAILED.labels(queue=cfg.queue)
        self.retried = work.RETRIED.labels(queue=cfg.queue)
        self.dead_lettered = work.DEAD_LETTERED.labels(queue=cfg.queue)

    async def run(self) -> None:
        cfg = self.cfg
        consumer = ConsumerConfig(
            durable_name=cfg.group,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=cfg.ack_wait_ms / 1000,
            max_deliver=cfg.max_attempts if cfg.dlq else -1,
        )
        await common.consume(log, cfg.queue, consumer, cfg.batch, self.stop, self.batch, self.setup)

    async def setup(self, client: Client, js: JetStreamContext) -> None:
        self.js = js
        advisory = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.cfg.queue}.{self.cfg.group}"
        await client.subscribe(advisory, queue="dead-letter", cb=self.dead_letter)

    async def batch(self, messages: list[Msg]) -> None:
        if not self.cfg.ack_after:
            await asyncio.gather(*(message.ack() for message in messages))
        for message in messages:
            if self.stop.is_set():
                return  # unacknowledged: delivered again after ACK_WAIT_MS
            await self.handle(message)

    async def handle(self, message: Msg) -> None:
        cfg = self.cfg
        fields = service.decode(message.data)
        delivered = message.metadata.num_delivered or 1
        if delivered > 1:
            self.retried.inc()
        started = time.perf_counter()
        try:
            work.process(fields, cfg.process_ms)
        except work.ProcessingError as exc:
            self.failed.inc()
            delay = service.backoff_seconds(delivered, cfg.retry_base_ms, cfg.retry_max_ms)
            if cfg.ack_after:
                await message.nak(delay=delay)
            failures_log.warning(
                f"message {fields.get('id')} attempt {delivered}: {exc}; retry in {delay:.3f}s"
            )
            return
        seq = str(message.metadata.sequence.stream)
        described = work.describe(seq, fields, cfg.consumer, time.time())
        while True:
            try:
                work.record(self.http, cfg.sink_url, [described])
                break
            except httpx.HTTPError as exc:
                self.failed.inc()
                errors_log.warning(f"sink failed, message {described['id']} kept: {exc!r}")
                if self.stop.is_set():
                    return
                if cfg.ack_after:
                    await message.in_progress()  # not yet due for delivery to another worker
                await asyncio.sleep(0.2)
        if cfg.ack_after:
            await message.ack()
        self.handled.inc()
        work.BATCH_SECONDS.observe(time.perf_counter() - started)

    async def dead_letter(self, advisory: Msg) -> None:
        """Copy a message the consumer gave up on to ``<QUEUE>.dlq``, then delete it."""
        cfg, js = self.cfg, self.js
        assert js is not None
        try:
            event = json.loads(advisory.data)
            seq = int(event["stream_seq"])
            original = await js.get_msg(cfg.queue, seq)
            fields = service.decode(original.data or b"")
            fields.update(attempts=str(event.get("deliveries", "")), error="max deliveries")
            await js.publish(
                f"{cfg.queue}.dlq", service.encode(fields), headers={"Nats-Msg-Id": f"dlq:{seq}"}
            )
            await js.delete_msg(cfg.queue, seq)
        except (NatsError, ValueError, KeyError) as exc:
            errors_log.warning(f"dead-lettering failed: {type(exc).__name__}: {exc}")
            return
        self.dead_lettered.inc()
        failures_log.warning(f"message {fields.get('id')} dead-lettered to {cfg.queue}.dlq")


def main() -> int:
    cfg = Config.from_env()
    stop = service.install_stop_handler(interrupt=False)
    start_http_server(cfg.metrics_port, addr=service.bind_addr())
    host, port = common.nats_addr()
    log.info(
        "worker %s consuming nats %s:%d stream=%s consumer=%s, sink %s, ack %s processing, "
        "ack wait %d ms, retries %d..%d ms, max attempts %d, dlq %s, "
        "metrics on http://127.0.0.1:%d/metrics",
        cfg.consumer,
        host,
        port,
        cfg.queue,
        cfg.group,
        cfg.sink_url,
        "after" if cfg.ack_after else "before",
        cfg.ack_wait_ms,
        cfg.retry_base_ms,
        cfg.retry_max_ms,
        cfg.max_attempts,
        "on" if cfg.dlq else "off",
        cfg.metrics_port,
    )
    worker = Worker(cfg, stop)
    common.run_until_stopped(worker.run, stop, log)
    worker.http.close()
    log.info("worker %s stopped", cfg.consumer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
