"""Broker probes for systems the harness did not write: the backlog their brokers hold.

Task queues on Redis (Celery, RQ, Sidekiq-style workers) keep waiting messages in a list and
those delivered but not acknowledged in a hash or another list; a Kafka consumer group's backlog
is its lag, the records past its committed offsets. Reading them on each scrape gives the
harness the depth and in-flight counts its checks and its drain read, without the system
exporting anything. Run as a component: ``harness probe redis|kafka --url ... --queue ...``.
"""

from __future__ import annotations

import errno
import signal
import sys
import threading
from collections.abc import Iterator

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from harness.errors import PortTaken

# A scrape must answer within Prometheus' 1 s timeout even when Redis does not.
TIMEOUT_S = 0.3


class RedisQueues(Collector):
    """On each scrape: the length of each queue's list, and the members of the unacknowledged
    key (or keys), of whatever type a task queue keeps them in."""

    def __init__(self, client: redis.Redis, queues: list[str], unacked: str | None) -> None:
        self.client, self.queues, self.unacked = client, queues, unacked
        self._said: set[str] = set()

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
            held: int | None = self._unacked_count()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        except UnreadableKey as exc:
            # Never a 0 for what cannot be read: no in-flight count, so a check that reads
            # it has no data (inconclusive) and the drain does not end on it.
            self._log_once(str(exc))
            held = None
        up.add_metric([], 1)
        for queue, length in zip(self.queues, lengths, strict=True):
            depth.add_metric([queue], length)
        yield from (up, depth)
        if held is not None:
            inflight.add_metric([self.queues[0]], held)
            for queue in self.queues[1:]:
                inflight.add_metric([queue], 0)
            yield inflight

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
        if kind == "none":  # gone since the scan: it holds nothing
            return 0
        sizes = {
            "hash": self.client.hlen,
            "list": self.client.llen,
            "set": self.client.scard,
            "zset": self.client.zcard,
            "stream": self.client.xlen,
        }
        if kind not in sizes:
            name = key.decode(errors="replace") if isinstance(key, bytes) else key
            raise UnreadableKey(
                f"the unacknowledged key {name!r} is a Redis {kind}: the probe counts the "
                "members of a hash, list, set, sorted set or stream; no in-flight count"
            )
        return int(sizes[kind](key))

    def _log_once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            print(f"harness probe: {message}", file=sys.stderr, flush=True)


class UnreadableKey(Exception):
    """The unacknowledged key is of a type whose members the probe cannot count."""


class KafkaLag(Collector):
    """On each scrape: per ``topic:group``, the records past the group's committed offsets (a
    record a member read and did not commit counts: it will be read again)."""

    def __init__(self, bootstrap: str, queues: list[str]) -> None:
        self.pairs = [_topic_group(queue) for queue in queues]
        self.readers = {
            group: Consumer(
                {
                    "bootstrap.servers": bootstrap,
                    "group.id": group,  # read its offsets; never subscribes, never commits
                    "enable.auto.commit": False,
                    "socket.connection.setup.timeout.ms": 1000,
                    "log_level": 0,
                }
            )
            for _, group in self.pairs
        }

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("harness_probe_broker_up", "1 if Kafka answered this scrape")
        try:
            lags = [self._lag(topic, group) for topic, group in self.pairs]
        except KafkaException:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        depth = GaugeMetricFamily(
            "harness_queue_depth", "Records past the group's committed offsets", labels=["queue"]
        )
        inflight = GaugeMetricFamily(
            "harness_queue_inflight", "0: Kafka's lag counts read records too", labels=["queue"]
        )
        lag = GaugeMetricFamily(
            "harness_consumer_lag", "Records past the committed offsets", labels=["queue", "group"]
        )
        for (topic, group), records in zip(self.pairs, lags, strict=True):
            depth.add_metric([topic], records)
            inflight.add_metric([topic], 0)
            lag.add_metric([topic, group], records)
        yield from (up, depth, inflight, lag)

    def _lag(self, topic: str, group: str) -> int:
        reader = self.readers[group]
        metadata = reader.list_topics(topic, timeout=TIMEOUT_S).topics[topic]
        if metadata.error is not None:
            if metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return 0  # not created yet: nothing waits in it
            raise KafkaException(metadata.error)
        partitions = [TopicPartition(topic, p) for p in metadata.partitions]
        total = 0
        for partition in reader.committed(partitions, timeout=TIMEOUT_S):
            low, high = reader.get_watermark_offsets(partition, timeout=TIMEOUT_S, cached=False)
            total += high - max(partition.offset, low)
        return total


def _topic_group(queue: str) -> tuple[str, str]:
    topic, sep, group = queue.partition(":")
    if not sep or not topic or not group:
        raise ValueError(f"--queue {queue!r}: a Kafka queue is TOPIC:GROUP")
    return topic, group


def collector(broker: str, url: str, queues: list[str], unacked: str | None) -> Collector:
    """The probe of ``broker`` (redis | kafka) at ``url``."""
    if broker == "kafka":
        return KafkaLag(url, queues)
    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    return RedisQueues(client, queues, unacked)


def serve(source: Collector, port: int) -> None:
    """Serve the metrics on ``port`` until SIGTERM or SIGINT."""
    REGISTRY.register(source)
    try:
        start_http_server(port, addr="127.0.0.1")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken("harness probe", port) from None
        raise
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
