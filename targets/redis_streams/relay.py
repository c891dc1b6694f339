"""Relay: owns delivering the API's outbox (the notifications stream) to the notifier.

Reads batches with its own consumer group, claims entries a dead relay left pending (XAUTOCLAIM),
POSTs each entry's id to NOTIFIER_URL/notify and acknowledges the batch once every post
succeeded. A failed post is retried, same entry, after an exponential backoff with jitter
(RETRY_BASE_MS doubling up to RETRY_MAX_MS), for as long as it takes: the notifier being down
delays notifications, it never loses them nor affects the API. At least once: the notifier
counts distinct ids.
Env: REDIS_ADDR, STREAM (default ``notifications``), GROUP (default ``relay``), CONSUMER,
METRICS_PORT (required), BATCH, BLOCK_MS, CLAIM_IDLE_MS (0 = never claim), and those of
``notify.py``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from threading import Event

from prometheus_client import Counter, start_http_server
from redis.exceptions import RedisError

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import notify
import service

log = service.setup_logging("relay")
errors_log = service.Throttled(log)

CLAIMED = Counter(
    "harness_relay_claimed_total", "Outbox entries claimed from a dead relay", ["queue"]
)


@dataclass(frozen=True)
class Config:
    redis_host: str
    redis_port: int
    stream: str
    group: str
    consumer: str
    metrics_port: int
    batch: int
    block_ms: int
    claim_idle_ms: int

    @classmethod
    def from_env(cls) -> Config:
        host, port = common.redis_addr()
        return cls(
            redis_host=host,
            redis_port=port,
            stream=service.env_str("STREAM", "notifications"),
            group=service.env_str("GROUP", "relay"),
            consumer=service.env_str("CONSUMER", f"relay-{os.getpid()}"),
            metrics_port=service.env_int("METRICS_PORT"),
            batch=service.env_int("BATCH", 50),
            block_ms=service.env_int("BLOCK_MS", 500),
            claim_idle_ms=service.env_int("CLAIM_IDLE_MS", 5000),
        )


class Relay:
    def __init__(self, cfg: Config, stop: Event) -> None:
        self.cfg, self.stop = cfg, stop
        self.redis = common.connect(cfg.redis_host, cfg.redis_port, cfg.block_ms / 1000 + 5)
        self.reader = common.GroupReader(self.redis, cfg)
        self.notifier = notify.NotifierClient(cfg.stream, log)
        self.claimed = CLAIMED.labels(queue=cfg.stream)

    def deliver(self, job_id: str) -> bool:
        """POST until the notifier takes it (True) or the relay is stopped (False)."""
        attempt = 1
        while (delay := self.notifier.post(job_id, attempt)) is not None:
            if self.stop.wait(delay):
                return False
            attempt += 1
        return True

    def handle(self, entries: list[common.Entry]) -> None:
        acked = []
        for sid, fields in entries:
            if fields is not None and fields.get("id") and not self.deliver(fields["id"]):
                break  # stopping: the rest stays pending
            acked.append(sid)
        if acked:
            self.redis.xack(self.cfg.stream, self.cfg.group, *acked)

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
                    self.claimed.inc(len(entries))
                if entries:
                    self.handle(entries)
            except (RedisError, OSError) as exc:
                errors_log.warning(f"redis failed: {type(exc).__name__}: {exc}")
                need_group = True
                self.stop.wait(0.5)

    def close(self) -> None:
        self.notifier.close()
        self.redis.close()


def main() -> int:
    cfg = Config.from_env()
    stop = service.install_stop_handler(interrupt=True)
    relay: Relay | None = None
    try:
        start_http_server(cfg.metrics_port, addr=service.bind_addr())
        relay = Relay(cfg, stop)
        log.info(
            "relay %s consuming redis %s:%d stream=%s group=%s, notifier %s, "
            "metrics on http://127.0.0.1:%d/metrics",
            cfg.consumer,
            cfg.redis_host,
            cfg.redis_port,
            cfg.stream,
            cfg.group,
            relay.notifier.url,
            cfg.metrics_port,
        )
        relay.run()
    except service.Shutdown:
        pass
    if relay is not None:
        relay.close()
    log.info("relay %s stopped", cfg.consumer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
