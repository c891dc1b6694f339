"""Broker probe: owns the observation of the stream's queue state, read from Redis at each scrape.

It talks to Redis directly (never through a fault proxy) and changes nothing. Gauges on
``/metrics``: harness_queue_depth, harness_queue_inflight, harness_consumer_lag,
harness_oldest_message_age_seconds, harness_stream_length, harness_probe_broker_up.
Env: REDIS_ADDR, STREAM, GROUP, METRICS_PORT (required).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError, ResponseError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

log = common.setup_logging("probe")
errors_log = common.Throttled(log, interval=5.0)


@dataclass(frozen=True)
class Snapshot:
    depth: int
    inflight: int
    length: int
    oldest_age: float


class StreamCollector(Collector):
    """Asks Redis for the stream and group state each time the registry is collected."""

    def __init__(self, client: redis.Redis, stream: str, group: str) -> None:
        self.client, self.stream, self.group = client, stream, group

    def describe(self) -> list[Metric]:
        return []  # do not collect (hence call Redis) at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("harness_probe_broker_up", "1 if Redis answered this scrape")
        try:
            snap = self.snapshot()
        except (RedisError, OSError) as exc:
            errors_log.warning(f"redis failed: {type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, value in (
            ("harness_queue_depth", "Entries not yet delivered to the group", snap.depth),
            ("harness_queue_inflight", "Entries delivered but not acknowledged", snap.inflight),
            ("harness_stream_length", "XLEN of the stream", snap.length),
            (
                "harness_oldest_message_age_seconds",
                "Age of the oldest entry not yet acknowledged (0 if none)",
                snap.oldest_age,
            ),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=["queue"])
            gauge.add_metric([self.stream], value)
            yield gauge
        lag = GaugeMetricFamily(
            "harness_consumer_lag", "Entries not yet acknowledged", labels=["queue", "group"]
        )
        lag.add_metric([self.stream, self.group], snap.depth + snap.inflight)
        yield lag

    def snapshot(self) -> Snapshot:
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.stream).xinfo_groups(self.stream).time()
        xlen, groups, server_time = pipe.execute(raise_on_error=False)
        for result in (xlen, groups, server_time):
            if isinstance(result, Exception) and not _no_such_key(result):
                raise result
        if isinstance(groups, Exception):  # "no such key": the stream does not exist
            return Snapshot(0, 0, 0, 0.0)
        xlen = int(xlen)
        group = common.find_group(groups, self.group)
        depth, inflight = common.group_counts(group, xlen)
        candidates = (self._oldest_pending(inflight), self._first_undelivered(group, depth))
        waiting = [t for t in candidates if t is not None]
        now = int(server_time[0]) + int(server_time[1]) / 1e6  # Redis's clock, as in the ids
        age = max(0.0, now - min(waiting)) if waiting else 0.0
        return Snapshot(depth, inflight, xlen, age)

    def _oldest_pending(self, inflight: int) -> float | None:
        if inflight <= 0:
            return None
        try:
            summary: Any = self.client.xpending(self.stream, self.group)
        except ResponseError:  # NOGROUP: the group was destroyed since XINFO GROUPS
            return None
        first = summary.get("min") if summary else None
        return common.stream_id_seconds(first) if first else None

    def _first_undelivered(self, group: Any, depth: int) -> float | None:
        if depth <= 0:
            return None
        start = "-" if group is None else "(" + str(group["last-delivered-id"])
        try:
            entries: Any = self.client.xrange(self.stream, start, "+", count=1)
        except ResponseError:  # e.g. an exclusive start past the largest possible id
            return None
        return common.stream_id_seconds(entries[0][0]) if entries else None


def _no_such_key(exc: Exception) -> bool:
    return isinstance(exc, ResponseError) and "no such key" in str(exc).lower()


def main() -> int:
    host, port = common.redis_addr()
    stream = common.env_str("STREAM", "jobs")
    group = common.env_str("GROUP", "workers")
    metrics_port = common.env_int("METRICS_PORT")
    stop = common.install_stop_handler(interrupt=False)
    client = redis.Redis(
        host=host,
        port=port,
        socket_timeout=1,
        socket_connect_timeout=1,
        decode_responses=True,
        protocol=2,
        retry=common.no_retry(),
    )
    REGISTRY.register(StreamCollector(client, stream, group))
    start_http_server(metrics_port, addr="127.0.0.1")  # daemon threads: no need to stop them
    log.info(
        "probe observing redis %s:%d stream=%s group=%s, metrics on http://127.0.0.1:%d/metrics",
        host,
        port,
        stream,
        group,
        metrics_port,
    )
    stop.wait()
    client.close()
    log.info("probe stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
