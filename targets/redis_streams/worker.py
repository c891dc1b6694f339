"""Worker: owns consuming the stream as one member of the consumer group, at least once.

Reads batches with XREADGROUP and claims messages left pending by dead consumers (XAUTOCLAIM).
Each message of a batch is processed (PROCESS_MS), then the batch is posted to the sink in one
request. With ACK_MODE=after the batch is acknowledged (XACK) once the sink took it, in the same
round trip as the worker's next read: at any moment a busy worker holds one batch recorded and
not yet acknowledged, as a consumer that commits asynchronously does, so a worker killed then
leaves those messages to be delivered again (an idempotent sink absorbs them; IDEMPOTENT=0 applies
them twice). With ACK_MODE=before (the weakness) the batch is acknowledged right after it was
read: a worker that dies mid-batch loses the rest of it. A read that finds fewer than BATCH
messages is followed by a pause of BATCH_WAIT_MS, so that the next batch fills: a round trip
per batch, not per message, at the price of that much latency. A message whose processing fails
(a poison job) is acknowledged and scheduled for a retry in the sorted set
``<STREAM>:delayed`` with exponential backoff and jitter; after MAX_ATTEMPTS failed attempts it
goes to the stream ``<STREAM>:dlq`` instead, unless DLQ=0 (the weakness: retried forever). A
thread moves due retries back into the stream when they are due. A sink that fails is not a
message failure: the batch it did not take stays pending, to be claimed.
Env: REDIS_ADDR, STREAM, GROUP, CONSUMER, SINK_URL (required), METRICS_PORT (required),
PROCESS_MS, BATCH, BATCH_WAIT_MS, BLOCK_MS, CLAIM_IDLE_MS (0 = never claim), ACK_MODE
(after | before), RETRY_BASE_MS, RETRY_MAX_MS, MAX_ATTEMPTS, DLQ (1 | 0).
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

import httpx
from prometheus_client import start_http_server
from redis.exceptions import RedisError

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import service
import work

log = service.setup_logging("worker")
errors_log = service.Throttled(log)
failures_log = service.Throttled(log)

MOVE_MAX = 100  # due retries moved by one script call
# The mover sleeps until the next retry is due, but at most this long: a retry another worker
# scheduled is moved by that worker's mover on time, and by this one within a second.
MOVE_IDLE_SECONDS = 1.0
# Moves due retries from the delayed set back into the stream, and returns how many it moved
# and the score (due time) of the next one, or -1. A script runs atomically, so two workers
# never move the same entry. A member is the JSON object of the entry's fields.
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
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, next[2] or '-1'}
"""


@dataclass(frozen=True)
class Config:
    redis_host: str
    redis_port: int
    stream: str
    group: str
    consumer: str
    sink_url: str
    sink_timeout_ms: int
    metrics_port: int
    process_ms: int
    batch: int
    batch_wait_ms: int
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
            stream=service.env_str("STREAM", "jobs"),
            group=service.env_str("GROUP", "workers"),
            consumer=service.env_str("CONSUMER", f"worker-{os.getpid()}"),
            sink_url=service.env_str("SINK_URL").rstrip("/"),
            sink_timeout_ms=service.env_int("SINK_TIMEOUT_MS", 5000),
            metrics_port=service.env_int("METRICS_PORT"),
            process_ms=service.env_int("PROCESS_MS", 2),
            batch=service.env_int("BATCH", 10),
            batch_wait_ms=service.env_int("BATCH_WAIT_MS", 100),
            block_ms=service.env_int("BLOCK_MS", 500),
            claim_idle_ms=service.env_int("CLAIM_IDLE_MS", 5000),
            ack_after=service.env_choice("ACK_MODE", "after", ("after", "before")) == "after",
            retry_base_ms=service.env_int("RETRY_BASE_MS", 200),
            retry_max_ms=service.env_int("RETRY_MAX_MS", 2000),
            max_attempts=max(1, service.env_int("MAX_ATTEMPTS", 4)),
            dlq=service.env_flag("DLQ", True),
        )

    @property
    def delayed(self) -> str:
        return f"{self.stream}:delayed"

    @property
    def dead_letters(self) -> str:
        return f"{self.stream}:dlq"


class Worker:
    def __init__(self, cfg: Config, stop: Event, scheduled: Event) -> None:
        self.cfg = cfg
        self.stop = stop
        self.scheduled = scheduled  # set after a retry is scheduled: the mover's wake-up
        # A blocking read plus injected latency must not look like a timeout.
        self.redis = common.connect(cfg.redis_host, cfg.redis_port, cfg.block_ms / 1000 + 5)
        self.reader = common.GroupReader(self.redis, cfg, stop)
        # keep-alive: one post per batch stays cheap
        self.http = httpx.Client(timeout=cfg.sink_timeout_ms / 1000)
        self.handled = work.HANDLED.labels(queue=cfg.stream)
        self.failed = work.FAILED.labels(queue=cfg.stream)
        self.retried = work.RETRIED.labels(queue=cfg.stream)
        self.dead_lettered = work.DEAD_LETTERED.labels(queue=cfg.stream)

    def handle(self, entries: list[common.Entry]) -> list[str]:
        """Process a batch and record it at the sink; the ids to acknowledge now."""
        cfg = self.cfg
        # Pending ids whose entry was XDELed: nothing left to process.
        finished = [sid for sid, fields in entries if fields is None]
        live = [(sid, fields) for sid, fields in entries if fields is not None]
        if not live:
            return finished
        started = time.perf_counter()
        if not cfg.ack_after:
            self.redis.xack(cfg.stream, cfg.group, *(sid for sid, _ in live))
        done: list[tuple[str, dict[str, object]]] = []
        failures: list[dict[str, object]] = []
        for sid, fields in live:
            stamp, begun = common.stream_id_seconds(sid), time.time()
            try:
                work.process(fields, cfg.process_ms)
            except work.ProcessingError as exc:
                self.retry_later(sid, fields, exc)
                failures.append(work.describe(sid, fields, cfg.consumer, stamp, begun, failed=True))
                continue
            done.append((sid, work.describe(sid, fields, cfg.consumer, stamp, begun)))
        try:
            if done or failures:
                work.record(self.http, cfg.sink_url, [*(m for _, m in done), *failures])
        except httpx.HTTPError as exc:
            self.failed.inc(len(done))
            fate = "left pending" if cfg.ack_after else "lost (acknowledged before)"
            errors_log.warning(f"sink failed, {len(done)} messages {fate}: {exc!r}")
            self.stop.wait(0.2)
            return finished
        self.handled.inc(len(done))
        work.BATCH_SECONDS.observe(time.perf_counter() - started)
        return [*finished, *(sid for sid, _ in done)] if cfg.ack_after else finished

    def retry_later(self, sid: str, fields: dict[str, str], exc: Exception) -> None:
        """Schedule the next attempt, or dead-letter the message; acknowledge it in the same
        transaction, so that it is neither lost nor scheduled twice."""
        cfg = self.cfg
        self.failed.inc()
        attempt = work.attempt_of(fields)
        rest = {k: v for k, v in fields.items() if k != "attempt"}
        pipe = self.redis.pipeline(transaction=True)
        dead = cfg.dlq and attempt >= cfg.max_attempts
        if dead:
            pipe.xadd(cfg.dead_letters, {**rest, "attempts": str(attempt), "error": str(exc)})
            outcome = f"dead-lettered to {cfg.dead_letters}"
        else:
            delay = service.backoff_seconds(attempt, cfg.retry_base_ms, cfg.retry_max_ms)
            member = json.dumps({**rest, "attempt": str(attempt + 1)}, sort_keys=True)
            pipe.zadd(cfg.delayed, {member: time.time() + delay})
            outcome = f"retry in {delay:.3f}s"
        if cfg.ack_after:
            pipe.xack(cfg.stream, cfg.group, sid)
        pipe.execute()
        if dead:
            self.dead_lettered.inc()
            work.dead_lettered(self.http, cfg.sink_url, rest.get("id", sid), cfg.consumer)
        else:
            self.retried.inc()
            self.scheduled.set()
        failures_log.warning(f"message {rest.get('id', sid)} attempt {attempt}: {exc}; {outcome}")

    def run(self) -> None:
        need_group = True
        # The batch last recorded is acknowledged with the read after the next one is recorded
        # (or with the next read, when that finds nothing); ``due`` goes with the next read.
        held: list[str] = []
        due: list[str] = []
        while not self.stop.is_set():
            try:
                if need_group:
                    if self.reader.ensure_group():
                        log.info("created group %s on stream %s", self.cfg.group, self.cfg.stream)
                    need_group = False
                entries, claimed = self.reader.next_batch(ack=due)
                if claimed:
                    self.retried.inc(len(entries))
                due, held = held, (self.handle(entries) if entries else [])
            except (RedisError, OSError) as exc:
                errors_log.warning(f"redis failed: {type(exc).__name__}: {exc}")
                need_group = True  # ``due`` is sent again: XACK is idempotent
                self.stop.wait(0.5)

    def close(self) -> None:
        self.http.close()
        self.redis.close()


def move_due_retries(cfg: Config, stop: Event, wake: Event) -> None:
    """Move the retries that are due back into the stream (own connection): each time the next
    one is due, when this worker schedules one (``wake``), and at least every second."""
    client = common.connect(cfg.redis_host, cfg.redis_port, 5)
    move = client.register_script(MOVE_DUE)
    pause = 0.0
    while not stop.is_set():
        wake.wait(pause)
        wake.clear()
        try:
            moved, next_due = move(keys=[cfg.delayed, cfg.stream], args=[time.time(), MOVE_MAX])
        except (RedisError, OSError) as exc:
            errors_log.warning(f"moving due retries failed: {type(exc).__name__}: {exc}")
            pause = 0.5
            continue
        if int(moved) == MOVE_MAX:  # more may be due already
            pause = 0.0
        elif float(next_due) < 0:
            pause = MOVE_IDLE_SECONDS
        else:
            pause = min(MOVE_IDLE_SECONDS, max(0.0, float(next_due) - time.time()))
    client.close()


def main() -> int:
    cfg = Config.from_env()
    stop = service.install_stop_handler(interrupt=True)
    worker: Worker | None = None
    wake = Event()  # set when this worker schedules a retry
    mover = threading.Thread(target=move_due_retries, args=(cfg, stop, wake), daemon=True)
    try:
        start_http_server(cfg.metrics_port, addr=service.bind_addr())
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
        worker = Worker(cfg, stop, wake)
        worker.run()
    except service.Shutdown:
        pass
    stop.set()
    wake.set()
    if worker is not None:
        worker.close()
    if mover.is_alive():
        mover.join(timeout=1)
    log.info("worker %s stopped", cfg.consumer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
