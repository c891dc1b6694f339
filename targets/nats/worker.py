"""Worker: owns consuming the stream QUEUE as one member of the durable pull consumer GROUP, at
least once.

Fetches up to BATCH messages at a time (as soon as the stream has one). Each message of a batch
is processed (PROCESS_MS), then the batch is posted to the sink in one request. A fetch that
found fewer than BATCH is followed by a pause of BATCH_WAIT_MS, so that the next one fills: a
fetch and a post per batch, not per message, at the price of that much latency. With
ACK_MODE=after a batch is acknowledged one batch behind: once the sink took the next batch, or
when a fetch finds nothing. So at any moment a busy worker holds one batch recorded and not yet
acknowledged, as a consumer that acknowledges asynchronously does, and a worker killed then
leaves those messages to be delivered again (an idempotent sink absorbs them; IDEMPOTENT=0
applies them twice): acknowledging each batch as soon as the sink took it would leave almost no
moment between the two for a kill to land in. (Each message is acknowledged on its own: the
consumer is shared, so JetStream's acknowledge-all would take other members' messages too.)
With ACK_MODE=before (the weakness) the batch is acknowledged as soon as it is fetched (and the
worker waits until the server has the acknowledgements), so a worker that dies mid-batch loses
the rest of it. A message not acknowledged within ACK_WAIT_MS (a worker that died or hangs) is
delivered again, to any member. A sink that fails is not a message failure: the worker keeps the
batch (and acknowledges the one it held), tells the stream it is still working on it, and posts
it again every 200 ms. A message whose processing fails (a
poison job) is negatively acknowledged with a delay of its backoff (RETRY_BASE_MS doubling up to
RETRY_MAX_MS, with jitter). The consumer delivers a message at most MAX_ATTEMPTS times; the
stream then announces it (the MAX_DELIVERIES advisory), and one worker of the queue group
``dead-letter`` copies it to ``<QUEUE>.dlq`` and deletes it from the stream. DLQ=0 (the weakness)
delivers it forever. A message delivered more than once is counted as a retry.
Env: NATS_ADDR, QUEUE, GROUP (default ``workers``), CONSUMER, SINK_URL (required), METRICS_PORT
(required), PROCESS_MS, BATCH, BATCH_WAIT_MS, ACK_WAIT_MS, ACK_MODE (after | before),
RETRY_BASE_MS, RETRY_MAX_MS, MAX_ATTEMPTS, DLQ (1 | 0).
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
    batch_wait_ms: int
    ack_wait_ms: int

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            **work.Settings.from_env_shared(),
            group=service.env_str("GROUP", "workers"),
            batch=max(1, service.env_int("BATCH", 10)),
            batch_wait_ms=service.env_int("BATCH_WAIT_MS", 100),
            ack_wait_ms=service.env_int("ACK_WAIT_MS", 5000),
        )


class Worker:
    def __init__(self, cfg: Config, stop: threading.Event) -> None:
        self.cfg, self.stop = cfg, stop
        self.http = httpx.Client(timeout=5.0)
        self.client: Client | None = None
        self.js: JetStreamContext | None = None
        self.handled = work.HANDLED.labels(queue=cfg.queue)
        self.failed = work.FAILED.labels(queue=cfg.queue)
        self.retried = work.RETRIED.labels(queue=cfg.queue)
        self.dead_lettered = work.DEAD_LETTERED.labels(queue=cfg.queue)
        self.held: list[Msg] = []  # the batch recorded and not acknowledged yet

    async def run(self) -> None:
        cfg = self.cfg
        consumer = ConsumerConfig(
            durable_name=cfg.group,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=cfg.ack_wait_ms / 1000,
            max_deliver=cfg.max_attempts if cfg.dlq else -1,
        )
        self.held = []  # a new connection: what the last one held is delivered again
        await common.consume(
            log, cfg.queue, consumer, cfg.batch, cfg.batch_wait_ms, self.stop, self.batch,
            self.setup, idle=self.release,
        )  # fmt: skip

    async def setup(self, client: Client, js: JetStreamContext) -> None:
        self.client, self.js = client, js
        advisory = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.cfg.queue}.{self.cfg.group}"
        await client.subscribe(advisory, queue="dead-letter", cb=self.dead_letter)

    async def release(self) -> None:
        """Acknowledge the batch held, if any."""
        held, self.held = self.held, []
        for message in held:
            await message.ack()

    async def flush(self) -> None:
        """Wait until the server has what was published so far: an acknowledgement is only
        buffered, and the processing and the sink's post block the event loop that sends it."""
        assert self.client is not None
        try:
            await self.client.flush(timeout=2)
        except (TimeoutError, NatsError) as exc:
            errors_log.warning(f"flush failed: {type(exc).__name__}: {exc}")

    async def batch(self, messages: list[Msg]) -> None:
        cfg = self.cfg
        started = time.perf_counter()
        if not cfg.ack_after:
            for message in messages:
                await message.ack()
            await self.flush()  # before the processing, which holds the event loop
        done: list[Msg] = []
        described, failures = [], []
        for message in messages:
            if self.stop.is_set():
                return  # unacknowledged: delivered again after ACK_WAIT_MS
            fields = service.decode(message.data)
            delivered = message.metadata.num_delivered or 1
            if delivered > 1:
                self.retried.inc()
            seq, begun = str(message.metadata.sequence.stream), time.time()
            try:
                work.process(fields, cfg.process_ms)
            except work.ProcessingError as exc:
                failures.append(work.describe(seq, fields, cfg.consumer, begun, begun, True))
                self.failed.inc()
                delay = service.backoff_seconds(delivered, cfg.retry_base_ms, cfg.retry_max_ms)
                if cfg.ack_after:
                    await message.nak(delay=delay)
                failures_log.warning(
                    f"message {fields.get('id')} attempt {delivered}: {exc}; retry in {delay:.3f}s"
                )
                continue
            described.append(work.describe(seq, fields, cfg.consumer, begun, begun))
            done.append(message)
        if (described or failures) and not await self.record([*described, *failures], done):
            return  # stopped: unacknowledged, delivered again after ACK_WAIT_MS
        if cfg.ack_after:  # one batch behind: see the module's docstring
            await self.release()
            self.held = done
        self.handled.inc(len(described))
        work.BATCH_SECONDS.observe(time.perf_counter() - started)

    async def record(self, described: list[dict[str, object]], messages: list[Msg]) -> bool:
        """Post the batch to the sink until it takes it (True) or the worker is stopped."""
        while True:
            try:
                work.record(self.http, self.cfg.sink_url, described)
                return True
            except httpx.HTTPError as exc:
                self.failed.inc(work.processed(described))
                errors_log.warning(f"sink failed, {len(described)} messages kept: {exc!r}")
                if self.cfg.ack_after:
                    await self.release()  # recorded: no reason to hold it while the sink is down
                if self.stop.is_set():
                    return False
                if self.cfg.ack_after:
                    for message in messages:
                        await message.in_progress()  # not yet due for delivery to another worker
                await asyncio.sleep(0.2)

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
        work.dead_lettered(self.http, cfg.sink_url, fields.get("id", str(seq)), cfg.consumer)
        failures_log.warning(f"message {fields.get('id')} dead-lettered to {cfg.queue}.dlq")


def main() -> int:
    cfg = Config.from_env()
    stop = service.install_stop_handler(interrupt=False)
    start_http_server(cfg.metrics_port, addr=service.bind_addr())
    host, port = common.nats_addr()
    log.info(
        "worker %s consuming nats %s:%d stream=%s consumer=%s, sink %s, ack %s processing, "
        "batch %d (then %d ms), ack wait %d ms, retries %d..%d ms, max attempts %d, dlq %s, "
        "metrics on http://127.0.0.1:%d/metrics",
        cfg.consumer,
        host,
        port,
        cfg.queue,
        cfg.group,
        cfg.sink_url,
        "after" if cfg.ack_after else "before",
        cfg.batch,
        cfg.batch_wait_ms,
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
