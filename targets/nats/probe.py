"""Broker probe: owns the observation of the streams' state, read from NATS at each scrape.

It asks JetStream directly (never through a fault proxy) and changes nothing. For each
``stream:consumer`` in QUEUES, gauges on ``/metrics`` labelled ``queue``: harness_queue_depth
(messages the consumer has not delivered yet), harness_queue_inflight (delivered, not
acknowledged), harness_consumer_lag (both; also ``group``), harness_stream_length (messages in
the stream), harness_oldest_message_age_seconds (the stream's first message: with work-queue
retention, the oldest not acknowledged), harness_dlq_depth (the stream ``<stream>-dlq``),
harness_queue_delayed (0: a retry waiting for its delay is still in flight, JetStream does not
count it apart); and harness_probe_broker_up.
Env: NATS_ADDR, QUEUES (default ``jobs:workers,notifications:relay``), METRICS_PORT (required).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nats.aio.client import Client
from nats.errors import Error as NatsError
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import service

log = service.setup_logging("probe")
errors_log = service.Throttled(log, interval=5.0)

# The whole scrape's budget, under Prometheus' 1 s scrape timeout: a broker that does not
# answer (a dead container's address drops packets rather than refusing) is reported as
# harness_probe_broker_up 0 instead of leaving the probe unscraped.
SCRAPE_TIMEOUT_S = 0.6


@dataclass(frozen=True)
class Snapshot:
    depth: int
    inflight: int
    length: int
    oldest_age: float
    dead_letters: int
    delayed: int = 0


GAUGES = (  # name, help, Snapshot attribute
    ("harness_queue_depth", "Messages the consumer has not delivered yet", "depth"),
    ("harness_queue_inflight", "Messages delivered but not acknowledged", "inflight"),
    ("harness_stream_length", "Messages in the stream", "length"),
    (
        "harness_oldest_message_age_seconds",
        "Age of the oldest message not acknowledged (0 if none)",
        "oldest_age",
    ),
    ("harness_dlq_depth", "Messages in the dead-letter stream <queue>-dlq", "dead_letters"),
    ("harness_queue_delayed", "Retries waiting apart (none on JetStream)", "delayed"),
)


class StreamCollector(Collector):
    """Asks JetStream, on the probe's own event loop, each time the registry is collected."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, client: Client, queues: list[tuple[str, str]]
    ) -> None:
        self.loop, self.client, self.queues = loop, client, queues

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("harness_probe_broker_up", "1 if NATS answered this scrape")
        future = asyncio.run_coroutine_threadsafe(self.snapshots(), self.loop)
        try:
            snaps = future.result(SCRAPE_TIMEOUT_S)
        except (NatsError, OSError, TimeoutError, ValueError, KeyError) as exc:
            future.cancel()
            errors_log.warning(f"nats failed: {type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, attr in GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=["queue"])
            for (stream, _), snap in zip(self.queues, snaps, strict=True):
                gauge.add_metric([stream], getattr(snap, attr))
            yield gauge
        lag = GaugeMetricFamily(
            "harness_consumer_lag", "Messages not yet acknowledged", labels=["queue", "group"]
        )
        for (stream, group), snap in zip(self.queues, snaps, strict=True):
            lag.add_metric([stream, group], snap.depth + snap.inflight)
        yield lag

    async def snapshots(self) -> list[Snapshot]:
        return [await self.snapshot(stream, consumer) for stream, consumer in self.queues]

    async def snapshot(self, stream: str, consumer: str) -> Snapshot:
        state = await self.api(f"STREAM.INFO.{stream}")
        stream_state = state.get("state", {}) if "error" not in state else {}
        info = await self.api(f"CONSUMER.INFO.{stream}.{consumer}")
        depth, inflight = (
            (int(stream_state.get("messages", 0)), 0)  # no consumer yet: nothing delivered
            if "error" in info
            else (int(info.get("num_pending", 0)), int(info.get("num_ack_pending", 0)))
        )
        length = int(stream_state.get("messages", 0))
        oldest = 0.0
        if length > 0 and stream_state.get("first_ts"):
            oldest = max(0.0, time.time() - _unix(stream_state["first_ts"]))
        dead = await self.api(f"STREAM.INFO.{stream}-dlq")
        dead_letters = 0 if "error" in dead else int(dead["state"].get("messages", 0))
        return Snapshot(depth, inflight, length, oldest, dead_letters)

    async def api(self, subject: str) -> dict:
        """One JetStream API request; its JSON answer (with ``error`` if JetStream refused)."""
        reply = await self.client.request(f"$JS.API.{subject}", b"", timeout=SCRAPE_TIMEOUT_S)
        return json.loads(reply.data)


def _unix(timestamp: str) -> float:
    """An RFC 3339 time with nanoseconds, as JetStream writes it, in unix seconds."""
    whole, _, rest = timestamp.rstrip("Z").partition(".")
    fraction = float(f"0.{rest}") if rest else 0.0
    return datetime.fromisoformat(whole + "+00:00").timestamp() + fraction


async def serve(stop: threading.Event) -> None:
    queues = service.queue_pairs(
        service.env_str("QUEUES", "jobs:workers,notifications:relay"), "stream:consumer"
    )
    metrics_port = service.env_int("METRICS_PORT")
    client = await common.connect(log)
    REGISTRY.register(StreamCollector(asyncio.get_running_loop(), client, queues))
    # Daemon threads: no need to stop them.
    start_http_server(metrics_port, addr=service.bind_addr())
    host, port = common.nats_addr()
    log.info(
        "probe observing nats %s:%d queues %s, metrics on http://127.0.0.1:%d/metrics",
        host,
        port,
        ",".join(f"{stream}:{consumer}" for stream, consumer in queues),
        metrics_port,
    )
    while not stop.is_set():
        await asyncio.sleep(0.2)
    await client.close()


def main() -> int:
    stop = service.install_stop_handler(interrupt=False)
    asyncio.run(serve(stop))
    log.info("probe stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
