"""Broker probe: owns the observation of the topics' state, read from Kafka at each scrape.

It talks to the broker directly (never through a fault proxy) and changes nothing: it reads the
groups' committed offsets without joining them. For each ``topic:group`` in QUEUES, gauges on
``/metrics`` labelled ``queue``: harness_consumer_lag (also ``group``: the log end offsets minus
the committed offsets, summed over the partitions), harness_queue_depth (the same: Kafka keeps
no per-message acknowledgement, so what a member read and has not committed is still waiting),
harness_queue_inflight (0, for that reason), harness_oldest_message_age_seconds (the oldest
timestamp among the records at the committed offsets), harness_queue_delayed (the lag of
``<group>-retry`` on ``<topic>.delayed``), harness_dlq_depth (the records in ``<topic>.dlq``),
harness_stream_length (the records in the topic); and harness_probe_broker_up.
Env: KAFKA_ADDR, QUEUES (default ``jobs:workers,notifications:relay``), METRICS_PORT (required).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import service

log = service.setup_logging("probe")
errors_log = service.Throttled(log, interval=5.0)

PEEK_BUDGET_S = 0.3
# Every request of a scrape waits at most this long, so that a broker that is down makes the
# scrape say so (harness_probe_broker_up 0) well within Prometheus' scrape timeout.
REQUEST_TIMEOUT_S = 0.25


@dataclass(frozen=True)
class Snapshot:
    depth: int
    length: int
    oldest_age: float
    dead_letters: int
    delayed: int
    inflight: int = 0


GAUGES = (  # name, help, Snapshot attribute
    ("harness_queue_depth", "Records past the group's committed offsets", "depth"),
    ("harness_queue_inflight", "Always 0: Kafka has no per-message acknowledgement", "inflight"),
    ("harness_stream_length", "Records in the topic", "length"),
    (
        "harness_oldest_message_age_seconds",
        "Age of the oldest record past the committed offsets (0 if none)",
        "oldest_age",
    ),
    ("harness_dlq_depth", "Records in the dead-letter topic <queue>.dlq", "dead_letters"),
    ("harness_queue_delayed", "Retries waiting in <queue>.delayed", "delayed"),
)


class TopicCollector(Collector):
    def __init__(self, queues: list[tuple[str, str]]) -> None:
        self.queues = queues
        self.readers: dict[str, Consumer] = {}
        self.peeker = Consumer(
            common.config(log, **{"group.id": "harness-probe", "enable.auto.commit": False})
        )

    def describe(self) -> list[Metric]:
        return []

    def reader(self, group: str) -> Consumer:
        if group not in self.readers:
            self.readers[group] = common.group_reader(log, group)
        return self.readers[group]

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("harness_probe_broker_up", "1 if Kafka answered this scrape")
        try:
            self.peeker.list_topics(timeout=REQUEST_TIMEOUT_S)  # down: one short wait, not many
            snaps = [self.snapshot(topic, group) for topic, group in self.queues]
        except KafkaException as exc:
            errors_log.warning(f"kafka failed: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, attr in GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=["queue"])
            for (topic, _), snap in zip(self.queues, snaps, strict=True):
                gauge.add_metric([topic], getattr(snap, attr))
            yield gauge
        lag = GaugeMetricFamily(
            "harness_consumer_lag", "Records past the committed offsets", labels=["queue", "group"]
        )
        for (topic, group), snap in zip(self.queues, snaps, strict=True):
            lag.add_metric([topic, group], snap.depth)
        yield lag

    def snapshot(self, topic: str, group: str) -> Snapshot:
        partitions = self.lag(group, topic)
        oldest = self.oldest([tp for tp, n, _ in partitions if n > 0])
        return Snapshot(
            depth=sum(max(0, n) for _, n, _ in partitions),
            length=self.records(group, topic),
            oldest_age=max(0.0, time.time() - oldest) if oldest else 0.0,
            dead_letters=self.records(group, f"{topic}.dlq"),
            delayed=sum(max(0, n) for _, n, _ in self.lag(f"{group}-retry", f"{topic}.delayed")),
        )

    def lag(self, group: str, topic: str) -> list[tuple[TopicPartition, int, int]]:
        """``common.lag``; nothing for a topic not declared yet."""
        try:
            return common.lag(self.reader(group), topic, REQUEST_TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return []
            raise

    def records(self, group: str, topic: str) -> int:
        """The records ``topic`` holds: log end offsets minus log start offsets."""
        reader = self.reader(group)
        return sum(
            high - reader.get_watermark_offsets(tp, timeout=REQUEST_TIMEOUT_S)[0]
            for tp, _, high in self.lag(group, topic)
        )

    def oldest(self, partitions: list[TopicPartition]) -> float | None:
        """The earliest timestamp among the first records of ``partitions`` (read, not consumed:
        the probe's own client, at those offsets, commits nothing)."""
        if not partitions:
            return None
        self.peeker.assign(partitions)
        seen: dict[int, float] = {}
        deadline = time.monotonic() + PEEK_BUDGET_S
        while len(seen) < len(partitions) and time.monotonic() < deadline:
            for message in self.peeker.consume(len(partitions), 0.1):
                if message.error() is None and message.partition() not in seen:
                    seen[message.partition()] = message.timestamp()[1] / 1000
        self.peeker.unassign()
        return min(seen.values()) if seen else None


def main() -> int:
    queues = service.queue_pairs(
        service.env_str("QUEUES", "jobs:workers,notifications:relay"), "topic:group"
    )
    metrics_port = service.env_int("METRICS_PORT")
    stop = service.install_stop_handler(interrupt=False)
    REGISTRY.register(TopicCollector(queues))
    # Daemon threads: no need to stop them.
    start_http_server(metrics_port, addr=service.bind_addr())
    log.info(
        "probe observing kafka %s queues %s, metrics on http://127.0.0.1:%d/metrics",
        common.kafka_addr(),
        ",".join(f"{topic}:{group}" for topic, group in queues),
        metrics_port,
    )
    stop.wait()
    log.info("probe stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
