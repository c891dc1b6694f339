"""Worker: owns consuming the stream as one member of the consumer group, at least once.

Reads batches with XREADGROUP, claims messages left pending by dead consumers with XAUTOCLAIM,
reports each batch to the sink and acknowledges (XACK) only after the sink answered 2xx.
Env: REDIS_ADDR, STREAM, GROUP, CONSUMER, SINK_URL (required), METRICS_PORT (required),
PROCESS_MS, BATCH, BLOCK_MS, CLAIM_IDLE_MS.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import Any

import httpx
import redis
from prometheus_client import Counter, Histogram, start_http_server
from redis.exceptions import RedisError, ResponseError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

log = common.setup_logging("worker")
errors_log = common.Throttled(log)

HANDLED = Counter(
    "harness_worker_messages_total", "Messages this worker handed to the sink", ["queue"]
)
FAILED = Counter(
    "harness_messages_failed_total", "Messages whose sink call failed (left pending)", ["queue"]
)
RETRIED = Counter(
    "harness_messages_retried_total", "Messages claimed from another or a dead consumer", ["queue"]
)
BATCH_SECONDS = Histogram("harness_worker_batch_seconds", "Time to handle one batch")

Entry = tuple[str, dict[str, str] | None]


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
        )


class Worker:
    def __init__(self, cfg: Config, stop: Event) -> None:
        self.cfg = cfg
        self.stop = stop
        self.redis = redis.Redis(
            host=cfg.redis_host,
            port=cfg.redis_port,
            # A blocking read plus injected latency must not look like a timeout.
            socket_timeout=cfg.block_ms / 1000 + 5,
            socket_connect_timeout=2,
            decode_responses=True,
            protocol=2,
            retry=common.no_retry(),
        )
        self.http = httpx.Client(timeout=5.0)
        self.handled = HANDLED.labels(queue=cfg.stream)
        self.failed = FAILED.labels(queue=cfg.stream)
        self.retried = RETRIED.labels(queue=cfg.stream)
        self.claim_cursor = "0-0"
        self.next_claim = 0.0

    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.cfg.stream, self.cfg.group, id="0", mkstream=True)
            log.info("created group %s on stream %s", self.cfg.group, self.cfg.stream)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def next_batch(self) -> tuple[list[Entry], bool]:
        """Claimed messages first (flag True), else new ones; an empty list after BLOCK_MS."""
        cfg = self.cfg
        now = time.monotonic()
        if now >= self.next_claim:
            reply: Any = self.redis.xautoclaim(
                cfg.stream,
                cfg.group,
                cfg.consumer,
                min_idle_time=cfg.claim_idle_ms,
                start_id=self.claim_cursor,
                count=cfg.batch,
            )
            self.claim_cursor = str(reply[0])
            if self.claim_cursor == "0-0":  # scan of the pending list complete
                self.next_claim = now + cfg.claim_idle_ms / 2000
            if reply[1]:
                return list(reply[1]), True
        streams: Any = self.redis.xreadgroup(
            cfg.group, cfg.consumer, {cfg.stream: ">"}, count=cfg.batch, block=cfg.block_ms
        )
        return [entry for _, entries in streams or [] for entry in entries], False

    def handle(self, entries: list[Entry]) -> None:
        cfg = self.cfg
        deleted = [sid for sid, fields in entries if fields is None]
        if deleted:  # pending ids whose entry was XDELed: nothing left to process
            self.redis.xack(cfg.stream, cfg.group, *deleted)
        live = [(sid, fields) for sid, fields in entries if fields is not None]
        if not live:
            return
        started = time.perf_counter()
        for _ in live:
            time.sleep(cfg.process_ms / 1000)
        messages = [describe(sid, fields, cfg.consumer) for sid, fields in live]
        try:
            answer = self.http.post(f"{cfg.sink_url}/processed", json={"messages": messages})
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            self.failed.inc(len(live))
            errors_log.warning(f"sink failed, {len(live)} messages left pending: {exc!r}")
            BATCH_SECONDS.observe(time.perf_counter() - started)
            self.stop.wait(0.2)
            return
        self.handled.inc(len(live))
        self.redis.xack(cfg.stream, cfg.group, *(sid for sid, _ in live))
        BATCH_SECONDS.observe(time.perf_counter() - started)

    def run(self) -> None:
        need_group = True
        while not self.stop.is_set():
            try:
                if need_group:
                    self.ensure_group()
                    need_group = False
                entries, claimed = self.next_batch()
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
    try:
        start_http_server(cfg.metrics_port, addr="127.0.0.1")
        log.info(
            "worker %s consuming redis %s:%d stream=%s group=%s, sink %s, "
            "metrics on http://127.0.0.1:%d/metrics",
            cfg.consumer,
            cfg.redis_host,
            cfg.redis_port,
            cfg.stream,
            cfg.group,
            cfg.sink_url,
            cfg.metrics_port,
        )
        worker = Worker(cfg, stop)
        worker.run()
    except common.Shutdown:
        pass
    if worker is not None:
        worker.close()
    log.info("worker %s stopped", cfg.consumer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
