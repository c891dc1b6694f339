"""Worker: owns consuming the stream as one member of the consumer group, at least once.

Reads batches with XREADGROUP and claims messages left pending by dead consumers (XAUTOCLAIM).
Each message of a batch is processed (PROCESS_MS), then posted to the sink on its own; the batch
is acknowledged (XACK) at its end with ACK_MODE=after, or right after it was read with
ACK_MODE=before (the weakness: a worker that dies mid-batch loses the rest of it). A message
whose processing fails (a poison job) is acknowledged and scheduled for a retry in the sorted set
``<STREAM>:delayed`` with exponential backoff and jitter; after MAX_ATTEMPTS failed attempts it
goes to the stream ``<STREAM>:dlq`` instead, unless DLQ=0 (the weakness: retried forever). A
thread moves due retries back into the stream every 100 ms. A sink that fails is not a message
failure: the messages it did not take stay pending, to be claimed.
Env: REDIS_ADDR, STREAM, GROUP, CONSUMER, SINK_URL (required), METRICS_PORT (required),
PROCESS_MS, BATCH, BLOCK_MS, CLAIM_IDLE_MS (0 = never claim), ACK_MODE (after | before),
RETRY_BASE_MS, RETRY_MAX_MS, MAX_ATTEMPTS, DLQ (1 | 0).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any

import httpx
from prometheus_client import Counter, Histogram, start_http_server
from redis.exceptions import RedisError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

log = common.setup_logging("worker")
errors_log = common.Throttled(log)
failures_log = common.Throttled(log)

HANDLED = Counter(
    "harness_worker_messages_total", "Messages this worker handed to the sink", ["queue"]
)
FAILED = Counter(
    "harness_messages_failed_total",
    "Failed attempts: processing raised, or the sink refused the message",
    ["queue"],
)
RETRIED = Counter(
    "harness_messages_retried_total",
    "Retries scheduled, and messages claimed from another or a dead consumer",
    ["queue"],
)
DEAD_LETTERED = Counter(
    "harness_dlq_messages_total", "Messages moved to the dead-letter stream", ["queue"]
)
BATCH_SECONDS = Histogram("harness_worker_batch_seconds", "Time to handle one batch")

MOVE_EVERY_SECONDS = 0.1
MOVE_MAX = 100  # due retries moved by one script call
# Moves due retries from the delayed set back into the stream. A script runs atomically, so two
# workers never move the same entry. A member is the JSON object of the entry's fields.
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local flat = {}
  for key, value in pairs(cjson.decode(member)) do
    flat[#flat + 1] = key
    flat[#flat + 1] = value
  end
  redis.call('XADD', KEYS[2], '*', unpack(flat))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""


class ProcessingError(Exception):
    """Processing a message failed; it is retried later, or dead-lettered."""


@dataclass(frozen=True)
class Config:
    redis_host: str
    redis_port: int
    stream: str
    group: str
    consumer: str
    sink_url: str
    metrics_port: int
    process_ms: int
    batch: int
    block_ms: int
    claim_idle_ms: int
    ack_after: bool
    retry_base_ms: int
    retry_max_ms: int
    max_attempts: int
    dlq: bool

    @classmethod
    def from_env(cls) -> Config:
        host, port = common.redis_addr()
        return cls(
            redis_host=host,
            redis_port=port,
            stream=common.env_str("STREAM", "jobs"),
            group=common.env_str("GROUP", "workers"),
            consumer=common.env_str("CONSUMER", f"worker-{os.getpid()}"),
            sink_url=common.env_str("SINK_URL").rstrip("/"),
            metrics_port=common.env_int("METRICS_PORT"),
            process_ms=common.env_int("PROCESS_MS", 2),
            batch=common.env_int("BATCH", 10),
            block_ms=common.env_int("BLOCK_MS", 500),
            claim_idle_ms=common.env_int("CLAIM_IDLE_MS", 5000),
            ack_after=common.env_choice("ACK_MODE", "after", ("after", "before")) == "after",
            retry_base_ms=common.env_int("RETRY_BASE_MS", 200),
            retry_max_ms=common.env_int("RETRY_MAX_MS", 2000),
            max_attempts=max(1, common.env_int("MAX_ATTEMPTS", 4)),
            dlq=common.env_flag("DLQ", True),
        )

    @property
    def delayed(self) -> str:
        return f"{self.stream}:delayed"

    @property
    def dead_letters(self) -> str:
        return f"{self.stream}:dlq"


class Worker:
    def __init__(self, cfg: Config, stop: Event) -> None:
        self.cfg = cfg
        self.stop = stop
        # A blocking read plus injected latency must not look like a timeout.
        self.redis = common.connect(cfg.redis_host, cfg.redis_port, cfg.block_ms / 1000 + 5)
        self.reader = common.GroupReader(self.redis, cfg)
        self.http = httpx.Client(timeout=5.0)  # keep-alive: one post per message stays cheap
        self.handled = HANDLED.labels(queue=cfg.stream)
        self.failed = FAILED.labels(queue=cfg.stream)
        self.retried = RETRIED.labels(queue=cfg.stream)
        self.dead_lettered = DEAD_LETTERED.labels(queue=cfg.stream)

    def process(self, fields: dict[str, str]) -> None:
        time.sleep(self.cfg.process_ms / 1000)
        if fields.get("poison") == "1":
            raise ProcessingError("poison message")

    def handle(self, entries: list[common.Entry]) -> None:
        cfg = self.cfg
        deleted = [sid for sid, fields in entries if fields is None]
        if deleted:  # pending ids whose entry was XDELed: nothing left to process
            self.redis.xack(cfg.stream, cfg.group, *deleted)
        live = [(sid, fields) for sid, fields in entries if fields is not None]
        if not live:
            return
        started = time.perf_counter()
        if not cfg.ack_after:
            self.redis.xack(cfg.stream, cfg.group, *(sid for sid, _ in live))
        done: list[str] = []
        sink_failed = False
        for index, (sid, fields) in enumerate(live):
            try:
                self.process(fields)
            except ProcessingError as exc:
                self.retry_later(sid, fields, exc)
                continue
            message = describe(sid, fields, cfg.consumer)
            try:
                answer = self.http.post(f"{cfg.sink_url}/processed", json={"messages": [message]})
                answer.raise_for_status()
            except httpx.HTTPError as exc:
                self.failed.inc()
                fate = "left pending" if cfg.ack_after else "lost (acknowledged before)"
                errors_log.warning(f"sink failed, {len(live) - index} messages {fate}: {exc!r}")
                sink_failed = True
                break
            done.append(sid)
            self.handled.inc()
        if cfg.ack_after and done:
            self.redis.xack(cfg.stream, cfg.group, *done)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        if sink_failed:
            self.stop.wait(0.2)

    def retry_later(self, sid: str, fields: dict[str, str], exc: Exception) -> None:
        """Schedule the next attempt, or dead-letter the message; acknowledge it in the same
        transaction, so that it is neither lost nor scheduled twice."""
        cfg = self.cfg
        self.failed.inc()
        attempt = attempt_of(fields)
        rest = {k: v for k, v in fields.items() if k != "attempt"}
        pipe = self.redis.pipeline(transaction=True)
        dead = cfg.dlq and attempt >= cfg.max_attempts
        if dead:
            pipe.xadd(cfg.dead_letters, {**rest, "attempts": str(attempt), "error": str(exc)})
            outcome = f"dead-lettered to {cfg.dead_letters}"
        else:
            delay = common.backoff_seconds(attempt, cfg.retry_base_ms, cfg.retry_max_ms)
            member = json.dumps({**rest, "attempt": str(attempt + 1)}, sort_keys=True)
            pipe.zadd(cfg.delayed, {member: time.time() + delay})
            outcome = f"retry in {delay:.3f}s"
        if cfg.ack_after:
            pipe.xack(cfg.stream, cfg.group, sid)
        pipe.execute()
        if dead:
            self.dead_lettered.inc()
        else:
            self.retried.inc()
        failures_log.warning(f"message {rest.get('id', sid)} attempt {attempt}: {exc}; {outcome}")

    def run(self) -> None:
        need_group = True
        while not self.stop.is_set():
            try:
                if need_group:
                    if self.reader.ensure_group():
                        log.info("created group %s on stream %s", self.cfg.group, self.cfg.stream)
                    need_group = False
                entries, claimed = self.reader.next_batch()
                if claimed:
                    self.retried.inc(len(entries))
                if entries:
                    self.handle(entries)
            except (RedisError, OSError) as exc:
                errors_log.warning(f"redis failed: {type(exc).__name__}: {exc}")
                need_group = True
                self.stop.wait(0.5)

    def close(self) -> None:
        self.http.close()
        self.redis.close()


def move_due_retries(cfg: Config, stop: Event) -> None:
    """Every 100 ms, move the retries that are due back into the stream (own connection)."""
    client = common.connect(cfg.redis_host, cfg.redis_port, 5)
    move = client.register_script(MOVE_DUE)
    while not stop.wait(MOVE_EVERY_SECONDS):
        try:
            while move(keys=[cfg.delayed, cfg.stream], args=[time.time(), MOVE_MAX]) == MOVE_MAX:
                pass
        except (RedisError, OSError) as exc:
            errors_log.warning(f"moving due retries failed: {type(exc).__name__}: {exc}")
    client.close()


def attempt_of(fields: dict[str, str]) -> int:
    try:
        return max(1, int(fields.get("attempt", "1")))
    except ValueError:
        return 1


def describe(stream_id: str, fields: dict[str, str], consumer: str) -> dict[str, Any]:
    """The sink's view of one message; tolerant of entries not written by api.py."""
    try:
        enqueued_at = float(fields["enqueued_at"])
    except (KeyError, ValueError):
        enqueued_at = common.stream_id_seconds(stream_id)
    return {"id": fields.get("id") or stream_id, "enqueued_at": enqueued_at, "consumer": consumer}


def main() -> int:
    cfg = Config.from_env()
    stop = common.install_stop_handler(interrupt=True)
    worker: Worker | None = None
    mover = threading.Thread(target=move_due_retries, args=(cfg, stop), daemon=True)
    try:
        start_http_server(cfg.metrics_port, addr="127.0.0.1")
        log.info(
            "worker %s consuming redis %s:%d stream=%s group=%s, sink %s, ack %s processing, "
            "claim idle %d ms, retries %d..%d ms, max attempts %d, dlq %s, "
            "metrics on http://127.0.0.1:%d/metrics",
            cfg.consumer,
            cfg.redis_host,
            cfg.redis_port,
            cfg.stream,
            cfg.group,
            cfg.sink_url,
            "after" if cfg.ack_after else "before",
            cfg.claim_idle_ms,
            cfg.retry_base_ms,
            cfg.retry_max_ms,
            cfg.max_attempts,
            "on" if cfg.dlq else "off",
            cfg.metrics_port,
        )
        mover.start()
        worker = Worker(cfg, stop)
        worker.run()
    except common.Shutdown:
        pass
    stop.set()
    if worker is not None:
        worker.close()
    if mover.is_alive():
        mover.join(timeout=1)
    log.info("worker %s stopped", cfg.consumer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
