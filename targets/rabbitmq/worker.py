"""Worker: owns consuming the quorum queue QUEUE as one of its consumers, at least once.

Takes up to PREFETCH unacknowledged messages at a time and handles them in batches of up to BATCH:
the first message to arrive and those the client already received behind it. Each message of a
batch is processed (PROCESS_MS), then the batch is posted to the sink in one request. A batch
shorter than BATCH is followed by a pause of BATCH_WAIT_MS (the broker's deliveries buffering
meanwhile), so that the next one fills: a post per batch, not per message, at the price of that
much latency. With ACK_MODE=after a batch is acknowledged in one frame (``basic_ack`` with
``multiple``) one batch behind: once the sink took the next batch, or when 0.5 s pass without a
delivery. So at any moment a busy worker holds one batch recorded and not yet acknowledged, as a
consumer that acknowledges asynchronously does, and a worker killed then leaves those messages to
be delivered again (an idempotent sink absorbs them; IDEMPOTENT=0 applies them twice):
acknowledging each batch as soon as the sink took it would leave almost no moment between the two
for a kill to land in. PREFETCH (default 3 x BATCH) must leave room for the held batch and a full
next one; a batch for which it does not is acknowledged at once. With ACK_MODE=before (the
weakness) the consumer uses automatic acknowledgement, so the broker forgets each message as it
sends it and a worker that dies loses all it was sent. A sink that fails is not a message failure:
the worker keeps the batch (and acknowledges the one it held) and posts it again every 200 ms. A
message whose processing fails (a poison job) is published to ``<QUEUE>.delayed`` with an expiry of
its backoff (RETRY_BASE_MS doubling up to RETRY_MAX_MS, with jitter), from where it returns to
QUEUE, and acknowledged with its batch; after MAX_ATTEMPTS attempts it is published to
``<QUEUE>.dlq`` instead, unless DLQ=0 (the weakness: retried forever). HEARTBEAT (seconds, 0 =
none) is how long a hung worker keeps its messages before the broker gives them to another. A
redelivered message is counted as a retry.
Env: AMQP_ADDR, QUEUE, CONSUMER, SINK_URL (required), METRICS_PORT (required), PROCESS_MS,
BATCH, BATCH_WAIT_MS, PREFETCH, HEARTBEAT, ACK_MODE (after | before), RETRY_BASE_MS,
RETRY_MAX_MS, MAX_ATTEMPTS, DLQ (1 | 0).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pika
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
    batch: int
    batch_wait_ms: int
    prefetch: int
    heartbeat: int

    @classmethod
    def from_env(cls) -> Config:
        batch = max(1, service.env_int("BATCH", 10))
        return cls(
            **work.Settings.from_env_shared(),
            batch=batch,
            batch_wait_ms=service.env_int("BATCH_WAIT_MS", 100),
            prefetch=service.env_int("PREFETCH", 3 * batch),
            heartbeat=service.env_int("HEARTBEAT", 4),
        )


class Worker(common.Consumer):
    def __init__(self, cfg: Config, stop: threading.Event) -> None:
        super().__init__(
            cfg.queue, cfg.prefetch, not cfg.ack_after, cfg.heartbeat, stop, cfg.batch,
            cfg.batch_wait_ms,
        )  # fmt: skip
        self.cfg = cfg
        self.http = httpx.Client(timeout=5.0)
        self.handled = work.HANDLED.labels(queue=cfg.queue)
        self.failed = work.FAILED.labels(queue=cfg.queue)
        self.retried = work.RETRIED.labels(queue=cfg.queue)
        self.dead_lettered = work.DEAD_LETTERED.labels(queue=cfg.queue)
        self.held = 0  # the last tag of the batch recorded and not acknowledged yet (0: none)

    def connected(self) -> None:
        self.held = 0  # tags are the channel's: what the last one held is redelivered

    def idle(self) -> None:
        self.release()

    def release(self) -> None:
        """Acknowledge the batch held, if any."""
        if self.held:
            self.acknowledge(self.held)
            self.held = 0

    def handle(self, deliveries: list[common.Delivery]) -> None:
        cfg = self.cfg
        started = time.perf_counter()
        redelivered = sum(1 for d in deliveries if d.method.redelivered)
        if redelivered:
            self.retried.inc(redelivered)
        done, failures = [], []
        for delivery in deliveries:
            fields = service.decode(delivery.body)
            broker_id = delivery.properties.message_id or str(delivery.tag)
            begun = time.time()
            try:
                work.process(fields, cfg.process_ms)
            except work.ProcessingError as exc:
                self.retry_later(fields, exc)
                failures.append(work.describe(broker_id, fields, cfg.consumer, begun, begun, True))
                continue
            done.append(work.describe(broker_id, fields, cfg.consumer, begun, begun))
        if (done or failures) and not self.record([*done, *failures]):
            return  # stopped: unacknowledged, the broker gives the batch to another worker
        if cfg.ack_after:  # one batch behind: see the module's docstring
            self.release()
            self.held = deliveries[-1].tag
            if len(deliveries) + cfg.batch > cfg.prefetch:
                self.release()  # no room for a full batch behind it: held, the next would shrink
        self.handled.inc(len(done))
        work.BATCH_SECONDS.observe(time.perf_counter() - started)

    def record(self, messages: list[dict[str, object]]) -> bool:
        """Post the batch to the sink until it takes it (True) or the worker is stopped."""
        while True:
            try:
                work.record(self.http, self.cfg.sink_url, messages)
                return True
            except httpx.HTTPError as exc:
                self.failed.inc(work.processed(messages))
                fate = "kept" if self.cfg.ack_after else "kept (acknowledged already)"
                errors_log.warning(f"sink failed, {len(messages)} messages {fate}: {exc!r}")
                self.release()  # recorded: no reason to hold it while the sink is down
                if self.stop.is_set():
                    return False
                self.wait(0.2)

    def retry_later(self, fields: dict[str, str], exc: Exception) -> None:
        """Publish the next attempt (or the dead letter), confirmed; the message is acknowledged
        with its batch, after: a crash in between repeats the attempt, it never loses the
        message."""
        cfg = self.cfg
        self.failed.inc()
        attempt = work.attempt_of(fields)
        rest = {k: v for k, v in fields.items() if k != "attempt"}
        if cfg.dlq and attempt >= cfg.max_attempts:
            body = {**rest, "attempts": str(attempt), "error": str(exc)}
            self.publish(f"{cfg.queue}.dlq", body, None)
            self.dead_lettered.inc()
            work.dead_lettered(self.http, cfg.sink_url, rest.get("id", ""), cfg.consumer)
            outcome = f"dead-lettered to {cfg.queue}.dlq"
        else:
            delay = service.backoff_seconds(attempt, cfg.retry_base_ms, cfg.retry_max_ms)
            self.publish(f"{cfg.queue}.delayed", {**rest, "attempt": str(attempt + 1)}, delay)
            self.retried.inc()
            outcome = f"retry in {delay:.3f}s"
        failures_log.warning(f"message {rest.get('id')} attempt {attempt}: {exc}; {outcome}")

    def publish(self, queue: str, fields: dict[str, str], expire_s: float | None) -> None:
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=fields.get("id"),
            expiration=None if expire_s is None else str(max(1, int(expire_s * 1000))),
        )
        self.channel.basic_publish("", queue, service.encode(fields), properties, mandatory=True)


def main() -> int:
    cfg = Config.from_env()
    stop = service.install_stop_handler(interrupt=True)
    worker: Worker | None = None
    try:
        start_http_server(cfg.metrics_port, addr=service.bind_addr())
        host, port = common.amqp_addr()
        log.info(
            "worker %s consuming rabbitmq %s:%d queue=%s, sink %s, ack %s processing, "
            "batch %d (then %d ms), prefetch %d, heartbeat %d s, retries %d..%d ms, "
            "max attempts %d, dlq %s, metrics on http://127.0.0.1:%d/metrics",
            cfg.consumer,
            host,
            port,
            cfg.queue,
            cfg.sink_url,
            "after" if cfg.ack_after else "before",
            cfg.batch,
            cfg.batch_wait_ms,
            cfg.prefetch,
            cfg.heartbeat,
            cfg.retry_base_ms,
            cfg.retry_max_ms,
            cfg.max_attempts,
            "on" if cfg.dlq else "off",
            cfg.metrics_port,
        )
        worker = Worker(cfg, stop)
        worker.run()
    except service.Shutdown:
        pass
    stop.set()
    if worker is not None:
        worker.close()
        worker.http.close()
    log.info("worker %s stopped", cfg.consumer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
