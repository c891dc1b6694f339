"""Relay: owns delivering the API's outbox (the notifications stream) to the notifier.

Reads batches with its own consumer group, claims entries a dead relay left pending (XAUTOCLAIM),
POSTs the batch's ids to NOTIFIER_URL/notify in one request and acknowledges the batch, with its
next read, once the notifier took it. A failed post is retried, same batch, after an exponential
backoff with jitter (RETRY_BASE_MS doubling up to RETRY_MAX_MS), for as long as it takes: the
notifier being down delays notifications, it never loses them nor affects the API. A read that
finds fewer than BATCH entries is followed by a pause of BATCH_WAIT_MS, so that the next batch
fills. At least once: the notifier counts distinct ids.
Env: REDIS_ADDR, STREAM (default ``notifications``), GROUP (default ``relay``), CONSUMER,
METRICS_PORT (required), BATCH, BATCH_WAIT_MS, BLOCK_MS, CLAIM_IDLE_MS (0 = never claim), and
those of ``notify.py``.
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
    batch_wait_ms: int
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
            batch_wait_ms=service.env_int("BATCH_WAIT_MS", 100),
            block_ms=service.env_int("BLOCK_MS", 500),
            claim_idle_ms=service.env_int("CLAIM_IDLE_MS", 5000),
        )


class Relay:
    def __init__(self, cfg: Config, stop: Event) -> None:
        self.cfg, self.stop = cfg, stop
        self.redis = common.connect(cfg.redis_host, cfg.redis_port, cfg.block_ms / 1000 + 5)
        self.reader = common.GroupReader(self.redis, cfg, stop)
        self.notifier = notify.NotifierClient(cfg.stream, log)
        self.claimed = CLAIMED.labels(queue=cfg.stream)

    def deliver(self, job_ids: list[str]) -> bool:
        """POST until the notifier takes them (True) or the relay is stopped (False)."""
        attempt = 1
        while job_ids and (delay := self.notifier.post(job_ids, attempt)) is not None:
            if self.stop.wait(delay):
                return False
            attempt += 1
        return True

    def run(self) -> None:
        need_group = True
        delivered: list[str] = []  # acknowledged with the next read
        while not self.stop.is_set():
            try:
                if need_group:
                    if self.reader.ensure_group():
                        log.info("created group %s on stream %s", self.cfg.group, self.cfg.stream)
                    need_group = False
                entries, claimed = self.reader.next_batch(ack=delivered)
                delivered = []
                if claimed:
                    self.claimed.inc(len(entries))
                ids = [fields["id"] for _, fields in entries if fields and fields.get("id")]
                if not self.deliver(ids):
                    break  # stopping: the batch stays pending
                delivered = [sid for sid, _ in entries]
            except (RedisError, OSError) as exc:
                errors_log.warning(f"redis failed: {type(exc).__name__}: {exc}")
                need_group = True  # ``delivered`` is sent again: XACK is idempotent
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
