"""Broker probe: owns the observation of the streams' queue state, read from Redis at each scrape.

It talks to Redis directly (never through a fault proxy) and changes nothing. For each
``stream:group`` in QUEUES, gauges on ``/metrics`` labelled ``queue``: harness_queue_depth,
harness_queue_inflight, harness_consumer_lag (also ``group``), harness_oldest_message_age_seconds,
harness_stream_length, harness_dlq_depth (XLEN ``<stream>:dlq``), harness_queue_delayed (ZCARD
``<stream>:delayed``); and harness_probe_broker_up. A connection timeout of 0.3 s keeps a scrape
inside Prometheus' 1 s scrape timeout when Redis is unreachable: on loopback a dead Redis
refuses at once, but a dead container's address answers nothing, and a connect waits it out.
Env: REDIS_ADDR, QUEUES (default ``jobs:workers,notifications:relay``), METRICS_PORT (required).
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import service

log = service.setup_logging("probe")
errors_log = service.Throttled(log, interval=5.0)

DEFAULT_QUEUES = "jobs:workers,notifications:relay"


@dataclass(frozen=True)
class Snapshot:
    depth: int
    inflight: int
    length: int
    oldest_age: float
    dead_letters: int
    delayed: int


GAUGES = (  # name, help, Snapshot attribute
    ("harness_queue_depth", "Entries not yet delivered to the group", "depth"),
    ("harness_queue_inflight", "Entries delivered but not acknowledged", "inflight"),
    ("harness_stream_length", "XLEN of the stream", "length"),
    (
        "harness_oldest_message_age_seconds",
        "Age of the oldest entry not yet acknowledged (0 if none)",
        "oldest_age",
    ),
    ("harness_dlq_depth", "XLEN of the dead-letter stream <queue>:dlq", "dead_letters"),
    ("harness_queue_delayed", "Retries waiting for their time in <queue>:delayed", "delayed"),
)


class StreamCollector(Collector):
    """Asks Redis for each stream's and group's state each time the registry is collected."""

    def __init__(self, client: redis.Redis, queues: list[tuple[str, str]]) -> None:
        self.client, self.queues = client, queues

    def describe(self) -> list[Metric]:
        return []  # do not collect (hence call Redis) at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("harness_probe_broker_up", "1 if Redis answered this scrape")
        try:
            snaps = [(stream, group, self.snapshot(stream, group)) for stream, group in self.queues]
        except (RedisError, OSError) as exc:
            errors_log.warning(f"redis failed: {type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, attr in GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=["queue"])
            for stream, _, snap in snaps:
                gauge.add_metric([stream], getattr(snap, attr))
            yield gauge
        lag = GaugeMetricFamily(
            "harness_consumer_lag", "Entries not yet acknowledged", labels=["queue", "group"]
        )
        for stream, group, snap in snaps:
            lag.add_metric([stream, group], snap.depth + snap.inflight)
        yield lag

    def snapshot(self, stream: str, group_name: str) -> Snapshot:
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(stream).xinfo_groups(stream).time().xlen(f"{stream}:dlq")
        pipe.zcard(f"{stream}:delayed")
        xlen, groups, server_time, dead, delayed = pipe.execute(raise_on_error=False)
        for result in (xlen, groups, server_time, dead, delayed):
            if isinstance(result, Exception) and not _no_such_key(result):
                raise result
        if isinstance(groups, Exception):  # "no such key": the stream does not exist
            return Snapshot(0, 0, 0, 0.0, int(dead), int(delayed))
        xlen = int(xlen)
        group = common.find_group(groups, group_name)
        depth, inflight = common.group_counts(group, xlen)
        candidates = (
            self._oldest_pending(stream, group_name, inflight),
            self._first_undelivered(stream, group, depth),
        )
        waiting = [t for t in candidates if t is not None]
        now = int(server_time[0]) + int(server_time[1]) / 1e6  # Redis's clock, as in the ids
        age = max(0.0, now - min(waiting)) if waiting else 0.0
        return Snapshot(depth, inflight, xlen, age, int(dead), int(delayed))

    def _oldest_pending(self, stream: str, group: str, inflight: int) -> float | None:
        if inflight <= 0:
            return None
        try:
            summary: Any = self.client.xpending(stream, group)
        except ResponseError:  # NOGROUP: the group was destroyed since XINFO GROUPS
            return None
        first = summary.get("min") if summary else None
        return common.stream_id_seconds(first) if first else None

    def _first_undelivered(self, stream: str, group: Any, depth: int) -> float | None:
        if depth <= 0:
            return None
        start = "-" if group is None else "(" + str(group["last-delivered-id"])
        try:
            entries: Any = self.client.xrange(stream, start, "+", count=1)
        except ResponseError:  # e.g. an exclusive start past the largest possible id
            return None
        return common.stream_id_seconds(entries[0][0]) if entries else None


def _no_such_key(exc: Exception) -> bool:
    return isinstance(exc, ResponseError) and "no such key" in str(exc).lower()


def main() -> int:
    host, port = common.redis_addr()
    queues = service.queue_pairs(service.env_str("QUEUES", DEFAULT_QUEUES), "stream:group")
    metrics_port = service.env_int("METRICS_PORT")
    stop = service.install_stop_handler(interrupt=False)
    client = common.connect(host, port, socket_timeout=1, connect_timeout=0.3)
    REGISTRY.register(StreamCollector(client, queues))
    start_http_server(
        metrics_port, addr=service.bind_addr()
    )  # daemon threads: no need to stop them
    log.info(
        "probe observing redis %s:%d queues %s, metrics on http://127.0.0.1:%d/metrics",
        host,
        port,
        ",".join(f"{stream}:{group}" for stream, group in queues),
        metrics_port,
    )
    stop.wait()
    client.close()
    log.info("probe stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
