"""Worker: owns consuming the topic QUEUE as one member of the consumer group GROUP, at least once.

Answers on METRICS_PORT once the group has given it its partitions. Reads batches of up to BATCH
records from them, as soon as there is one; a batch shorter than BATCH is followed by a pause of
BATCH_WAIT_MS, so that the next one fills: a post per batch, not per record, at the price of that
much latency. Each record of a batch is processed (PROCESS_MS), then the batch is posted to the sink
in one request. With ACK_MODE=after the batch's offsets are stored and committed once the sink took
it, but for the last record of each partition, which is committed one batch behind: with the next
batch, or when a read finds nothing (and on a rebalance, before the partitions go). So at any moment
a busy worker holds records recorded and not yet committed, as a consumer that commits
asynchronously does, and a worker killed then leaves them to be read again (an idempotent sink
absorbs them; IDEMPOTENT=0 applies them twice): committing each whole batch as soon as the sink took
it, with a commit answered within milliseconds, would leave almost no moment between the two for a
kill to land in. One record per partition, not the whole batch, is held back because the group's lag
(all it has not committed) is the backlog that the checks read. One commit at a time is in flight
(common.GroupConsumer.done). With ACK_MODE=before (the weakness) the offsets are committed as soon
as the batch is read, so a worker that dies mid-batch loses the rest of it. A member that dies, or
hangs past SESSION_TIMEOUT_MS, loses its partitions to the others, which read again from its last
commit: a message the sink says it had applied before is counted as a retry (Kafka keeps no count of
deliveries). A sink that fails is not a message failure: the worker keeps the batch (and commits the
records it held) and posts it again every 200 ms. A message whose processing fails (a poison job) is
written to ``<QUEUE>.delayed`` with the time it is due (RETRY_BASE_MS doubling up to RETRY_MAX_MS,
with jitter), from where a second consumer in each worker (group ``<GROUP>-retry``) writes it back
to QUEUE once due; after MAX_ATTEMPTS attempts it is written to ``<QUEUE>.dlq`` instead, unless
DLQ=0 (the weakness: retried forever). Retries and dead letters are flushed before the batch's
offsets are stored, so neither is lost.
Env: KAFKA_ADDR, QUEUE, GROUP (default ``workers``), CONSUMER, SINK_URL (required),
METRICS_PORT (required), PROCESS_MS, BATCH, BATCH_WAIT_MS, SESSION_TIMEOUT_MS, ACK_MODE (after |
before), RETRY_BASE_MS, RETRY_MAX_MS, MAX_ATTEMPTS, DLQ (1 | 0).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from confluent_kafka import Message
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
    session_timeout_ms: int

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            **work.Settings.from_env_shared(),
            group=service.env_str("GROUP", "workers"),
            batch=max(1, service.env_int("BATCH", 10)),
            batch_wait_ms=service.env_int("BATCH_WAIT_MS", 100),
            session_timeout_ms=service.env_int("SESSION_TIMEOUT_MS", 6000),
        )


class Worker:
    def __init__(self, cfg: Config, stop: threading.Event) -> None:
        self.cfg, self.stop = cfg, stop
        self.http = httpx.Client(timeout=5.0)
        self.producer = common.producer(log)
        self.handled = work.HANDLED.labels(queue=cfg.queue)
        self.failed = work.FAILED.labels(queue=cfg.queue)
        self.retried = work.RETRIED.labels(queue=cfg.queue)
        self.dead_lettered = work.DEAD_LETTERED.labels(queue=cfg.queue)
        self.group = common.GroupConsumer(
            log, cfg.group, cfg.queue, cfg.session_timeout_ms, stop, cfg.batch_wait_ms
        )

    def handle(self, messages: list[Message]) -> None:
        cfg = self.cfg
        started = time.perf_counter()
        if not cfg.ack_after:
            self.group.done(messages)
        described, failures = [], []
        for message in messages:
            fields = service.decode(message.value() or b"")
            broker_id = f"{message.partition()}:{message.offset()}"
            stamp, begun = message.timestamp()[1] / 1000, time.time()
            try:
                work.process(fields, cfg.process_ms)
            except work.ProcessingError as exc:
                self.retry_later(fields, exc)
                failed = work.describe(broker_id, fields, cfg.consumer, stamp, begun, failed=True)
                failures.append(failed)
                continue
            described.append(work.describe(broker_id, fields, cfg.consumer, stamp, begun))
        if (described or failures) and not self.record([*described, *failures]):
            return  # not committed: read again by whoever gets the partition
        if cfg.ack_after:
            if self.producer.flush(5) > 0:
                errors_log.warning("retries not written; the batch is not committed")
                return
            self.group.done(messages, hold=True)  # partly one batch behind: see the docstring
        self.handled.inc(len(described))
        work.BATCH_SECONDS.observe(time.perf_counter() - started)

    def record(self, described: list[dict[str, object]]) -> bool:
        """Post the batch to the sink until it takes it (True) or the worker is stopped."""
        while True:
            try:
                duplicates = work.record(self.http, self.cfg.sink_url, described)
            except httpx.HTTPError as exc:
                self.failed.inc(work.processed(described))
                errors_log.warning(f"sink failed, {len(described)} messages kept: {exc!r}")
                if self.cfg.ack_after:
                    self.group.release()  # recorded: no reason to hold them while the sink is down
                if self.stop.wait(0.2):
                    return False
                continue
            if duplicates:
                self.retried.inc(duplicates)  # read again after another member died or hung
            return True

    def retry_later(self, fields: dict[str, str], exc: Exception) -> None:
        cfg = self.cfg
        self.failed.inc()
        attempt = work.attempt_of(fields)
        rest = {k: v for k, v in fields.items() if k not in ("attempt", "due")}
        if cfg.dlq and attempt >= cfg.max_attempts:
            body = {**rest, "attempts": str(attempt), "error": str(exc)}
            self.producer.produce(f"{cfg.queue}.dlq", service.encode(body), key=rest.get("id"))
            self.producer.flush(10)  # in the dead-letter topic before the sink is told so
            self.dead_lettered.inc()
            work.dead_lettered(self.http, cfg.sink_url, rest.get("id", ""), cfg.consumer)
            outcome = f"dead-lettered to {cfg.queue}.dlq"
        else:
            delay = service.backoff_seconds(attempt, cfg.retry_base_ms, cfg.retry_max_ms)
            body = {**rest, "attempt": str(attempt + 1), "due": repr(time.time() + delay)}
            self.producer.produce(f"{cfg.queue}.delayed", service.encode(body), key=rest.get("id"))
            self.retried.inc()
            outcome = f"retry in {delay:.3f}s"
        self.producer.poll(0)
        failures_log.warning(f"message {rest.get('id')} attempt {attempt}: {exc}; {outcome}")


class Retrier:
    """Writes each delayed retry back to QUEUE once it is due, then commits it."""

    def __init__(self, cfg: Config, stop: threading.Event) -> None:
        self.cfg, self.stop = cfg, stop
        self.producer = common.producer(log)
        self.group = common.GroupConsumer(
            log, f"{cfg.group}-retry", f"{cfg.queue}.delayed", cfg.session_timeout_ms, stop
        )

    def handle(self, messages: list[Message]) -> None:
        for message in messages:
            fields = service.decode(message.value() or b"")
            try:
                due = float(fields.pop("due", "0"))
            except ValueError:
                due = 0.0
            if self.stop.wait(max(0.0, due - time.time())):
                return
            self.producer.produce(self.cfg.queue, service.encode(fields), key=fields.get("id"))
        if self.producer.flush(5) == 0:
            self.group.done(messages)

    def run(self) -> None:
        self.group.run(100, self.handle)


def serve_metrics_once_joined(worker: Worker, port: int, stop: threading.Event) -> None:
    """Answer on /metrics (the readiness check) only once the group has given this worker its
    partitions: a worker that has not joined yet reads nothing."""
    while not worker.group.joined.wait(0.1):
        if stop.is_set():
            return
    start_http_server(port, addr=service.bind_addr())


def main() -> int:
    cfg = Config.from_env()
    stop = service.install_stop_handler(interrupt=False)
    log.info(
        "worker %s consuming kafka %s topic=%s group=%s, sink %s, ack %s processing, "
        "batch %d (then %d ms), session timeout %d ms, retries %d..%d ms, max attempts %d, dlq %s, "
        "metrics on http://127.0.0.1:%d/metrics",
        cfg.consumer,
        common.kafka_addr(),
        cfg.queue,
        cfg.group,
        cfg.sink_url,
        "after" if cfg.ack_after else "before",
        cfg.batch,
        cfg.batch_wait_ms,
        cfg.session_timeout_ms,
        cfg.retry_base_ms,
        cfg.retry_max_ms,
        cfg.max_attempts,
        "on" if cfg.dlq else "off",
        cfg.metrics_port,
    )
    if not common.declare_when_up(log, stop, cfg.queue, f"{cfg.queue}.delayed", f"{cfg.queue}.dlq"):
        return 0
    worker = Worker(cfg, stop)
    retrier = threading.Thread(target=Retrier(cfg, stop).run, name="retrier", daemon=True)
    retrier.start()
    threading.Thread(
        target=serve_metrics_once_joined, args=(worker, cfg.metrics_port, stop), daemon=True
    ).start()
    worker.group.run(cfg.batch, worker.handle, worker.group.release if cfg.ack_after else None)
    retrier.join(timeout=2)
    worker.producer.flush(2)
    worker.http.close()
    log.info("worker %s stopped", cfg.consumer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
