"""Worker: owns consuming the quorum queue QUEUE as one of its consumers, at least once.

Takes up to PREFETCH unacknowledged messages at a time. Each is processed (PROCESS_MS), posted
to the sink, then acknowledged (ACK_MODE=after); with ACK_MODE=before (the weakness) the consumer
uses automatic acknowledgement, so the broker forgets each message as it sends it and a worker
that dies loses all it was sent. A sink that fails is not a message failure: the worker keeps the
message and posts it again every 200 ms. A message whose processing fails (a poison job) is
published to ``<QUEUE>.delayed`` with an expiry of its backoff (RETRY_BASE_MS doubling up to
RETRY_MAX_MS, with jitter), from where it returns to QUEUE, and acknowledged; after MAX_ATTEMPTS
attempts it is published to ``<QUEUE>.dlq`` instead, unless DLQ=0 (the weakness: retried
forever). HEARTBEAT (seconds, 0 = none) is how long a hung worker keeps its messages before the
broker gives them to another. A redelivered message is counted as a retry.
Env: AMQP_ADDR, QUEUE, CONSUMER, SINK_URL (required), METRICS_PORT (required), PROCESS_MS,
PREFETCH, HEARTBEAT, ACK_MODE (after | before), RETRY_BASE_MS, RETRY_MAX_MS, MAX_ATTEMPTS,
DLQ (1 | 0).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    prefetch: int
    heartbeat: int

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            **work.Settings.from_env_shared(),
            prefetch=service.env_int("PREFETCH", 10),
            heartbeat=service.env_int("HEARTBEAT", 4),
        )


class Worker(common.Consumer):
    def __init__(self, cfg: Config, stop: threading.Event) -> None:
        super().__init__(cfg.queue, cfg.prefetch, not cfg.ack_after, cfg.heartbeat, stop)
        self.cfg = cfg
        self.http = httpx.Client(timeout=5.0)
        self.handled = work.HANDLED.labels(queue=cfg.queue)
        self.failed = work.FAILED.labels(queue=cfg.queue)
        self.retried = work.RETRIED.labels(queue=cfg.queue)
        self.dead_lettered = work.DEAD_LETTERED.labels(queue=cfg.queue)

    def handle(self, method: Any, properties: Any, body: bytes) -> None:
        cfg = self.cfg
        fields = service.decode(body)
        if method.redelivered:
            self.retried.inc()
        started = time.perf_counter()
        try:
            work.process(fields, cfg.process_ms)
        except work.ProcessingError as exc:
            self.retry_later(method, fields, exc)
            return
        broker_id = properties.message_id or str(method.delivery_tag)
        message = work.describe(broker_id, fields, cfg.consumer, time.time())
        while True:
            try:
                work.record(self.http, cfg.sink_url, [message])
                break
            except httpx.HTTPError as exc:
                self.failed.inc()
                fate = "kept" if cfg.ack_after else "kept (acknowledged already)"
                errors_log.warning(f"sink failed, message {message['id']} {fate}: {exc!r}")
                if self.stop.is_set():
                    return  # unacknowledged: the broker gives it to another worker
                self.wait(0.2)
        if cfg.ack_after:
            self.acknowledge(method.delivery_tag)
        self.handled.inc()
        work.BATCH_SECONDS.observe(time.perf_counter() - started)

    def retry_later(self, method: Any, fields: dict[str, str], exc: Exception) -> None:
        """Publish the next attempt (or the dead letter), confirmed, then acknowledge: a crash in
        between repeats the attempt, it never loses the message."""
        cfg = self.cfg
        self.failed.inc()
        attempt = work.attempt_of(fields)
        rest = {k: v for k, v in fields.items() if k != "attempt"}
        if cfg.dlq and attempt >= cfg.max_attempts:
            body = {**rest, "attempts": str(attempt), "error": str(exc)}
            self.publish(f"{cfg.queue}.dlq", body, None)
            self.dead_lettered.inc()
            outcome = f"dead-lettered to {cfg.queue}.dlq"
        else:
            delay = service.backoff_seconds(attempt, cfg.retry_base_ms, cfg.retry_max_ms)
            self.publish(f"{cfg.queue}.delayed", {**rest, "attempt": str(attempt + 1)}, delay)
            self.retried.inc()
            outcome = f"retry in {delay:.3f}s"
        if cfg.ack_after:
            self.acknowledge(method.delivery_tag)
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
            "prefetch %d, heartbeat %d s, retries %d..%d ms, max attempts %d, dlq %s, "
            "metrics on http://127.0.0.1:%d/metrics",
            cfg.consumer,
            host,
            port,
            cfg.queue,
            cfg.sink_url,
            "after" if cfg.ack_after else "before",
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
