"""A broker probe for systems the harness did not write: the backlog of Redis-list queues.

Task queues on Redis (Celery, RQ, Sidekiq-style workers) keep waiting messages in a list and
those delivered but not acknowledged in a hash or another list. Reading both on each scrape
gives the harness the depth and in-flight counts its checks and its drain read, without the
system exporting anything. Run as a component: ``harness probe redis --url ... --queue jobs``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import redis
from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# A scrape must answer within Prometheus' 1 s timeout even when Redis does not.
TIMEOUT_S = 0.3


class RedisQueues(Collector):
    """On each scrape: the length of each queue's list, and of the unacknowledged set."""

    def __init__(self, client: redis.Redis, queues: list[str], unacked: str | None) -> None:
        self.client, self.queues, self.unacked = client, queues, unacked

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("harness_probe_broker_up", "1 if Redis answered this scrape")
        depth = GaugeMetricFamily(
            "harness_queue_depth", "Messages waiting in the queue's list", labels=["queue"]
        )
        inflight = GaugeMetricFamily(
            "harness_queue_inflight",
            "Messages delivered and not acknowledged (all queues share the key)",
            labels=["queue"],
        )
        try:
            lengths = [self.client.llen(queue) for queue in self.queues]
            held = self._unacked_count()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for queue, length in zip(self.queues, lengths, strict=True):
            depth.add_metric([queue], length)
        inflight.add_metric([self.queues[0]], held)
        for queue in self.queues[1:]:
            inflight.add_metric([queue], 0)
        yield from (up, depth, inflight)

    def _unacked_count(self) -> int:
        """The size of the unacknowledged key, or the sum over the keys a pattern with ``*``
        matches (one list per worker, say ``processing:*``)."""
        if self.unacked is None:
            return 0
        keys = (
            list(self.client.scan_iter(match=self.unacked, count=1000))
            if "*" in self.unacked
            else [self.unacked]
        )
        return sum(self._size(key) for key in keys)

    def _size(self, key: str | bytes) -> int:
        kind = self.client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        sizes = {"hash": self.client.hlen, "list": self.client.llen, "zset": self.client.zcard}
        return int(sizes[kind](key)) if kind in sizes else 0


def serve(url: str, queues: list[str], unacked: str | None, port: int) -> None:
    """Serve the metrics on ``port`` until SIGTERM or SIGINT."""
    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    REGISTRY.register(RedisQueues(client, queues, unacked))
    start_http_server(port, addr="127.0.0.1")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
