"""Broker probe: owns the observation of the queues' state, read from RabbitMQ at each scrape.

It reads the broker's own Prometheus plugin (``/metrics/detailed``, the per-queue message
counts, refreshed by the broker every STATS_INTERVAL_MS) directly, never through a fault proxy,
and changes nothing. For each queue in QUEUES, gauges on ``/metrics`` labelled ``queue``:
harness_queue_depth (ready), harness_queue_inflight (delivered, not acknowledged),
harness_consumer_lag (both; also ``group``), harness_dlq_depth (``<queue>.dlq``),
harness_queue_delayed (``<queue>.delayed``); and harness_probe_broker_up. RabbitMQ cannot tell
the age of a queue's oldest message without consuming it, so there is no
harness_oldest_message_age_seconds here.
Env: PROMETHEUS_ADDR (the plugin's host:port, required), QUEUES (default
``jobs,notifications``), METRICS_PORT (required).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import service

log = service.setup_logging("probe")
errors_log = service.Throttled(log, interval=5.0)

FAMILY = "queue_coarse_metrics"
GAUGES = (  # name, help, the queue whose count it is, the broker's count
    ("harness_queue_depth", "Messages ready to be delivered", "{}", "messages_ready"),
    ("harness_queue_inflight", "Messages delivered, not acknowledged", "{}", "messages_unacked"),
    ("harness_dlq_depth", "Messages in the dead-letter queue <queue>.dlq", "{}.dlq", "messages"),
    ("harness_queue_delayed", "Retries waiting in <queue>.delayed", "{}.delayed", "messages"),
)


class QueueCollector(Collector):
    def __init__(self, url: str, queues: list[str]) -> None:
        self.url, self.queues = url, queues
        # Inside Prometheus' 1 s scrape timeout even when the broker's address drops packets
        # (a dead container's does; a dead local process refuses at once).
        self.http = httpx.Client(timeout=httpx.Timeout(0.6, connect=0.3))

    def describe(self) -> list[Metric]:
        return []  # do not collect (hence call RabbitMQ) at registration

    def counts(self) -> dict[tuple[str, str], float]:
        """``(queue, count) -> value`` for every queue of the default vhost."""
        answer = self.http.get(self.url, params={"family": FAMILY})
        answer.raise_for_status()
        prefix = "rabbitmq_detailed_queue_"
        return {
            (sample.labels.get("queue", ""), sample.name.removeprefix(prefix)): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
            if sample.name.startswith(prefix) and sample.labels.get("vhost") == "/"
        }

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("harness_probe_broker_up", "1 if RabbitMQ answered this scrape")
        try:
            counts = self.counts()
        except httpx.HTTPError as exc:
            errors_log.warning(f"rabbitmq failed: {type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, queue_name, count in GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=["queue"])
            for queue in self.queues:
                gauge.add_metric([queue], counts.get((queue_name.format(queue), count), 0))
            yield gauge
        lag = GaugeMetricFamily(
            "harness_consumer_lag", "Messages not yet acknowledged", labels=["queue", "group"]
        )
        for queue in self.queues:
            lag.add_metric([queue, queue], counts.get((queue, "messages"), 0))
        yield lag


def main() -> int:
    queues = [q.strip() for q in service.env_str("QUEUES", "jobs,notifications").split(",")]
    url = f"http://{service.env_str('PROMETHEUS_ADDR')}/metrics/detailed"
    metrics_port = service.env_int("METRICS_PORT")
    stop = service.install_stop_handler(interrupt=False)
    REGISTRY.register(QueueCollector(url, [q for q in queues if q]))
    # Daemon threads: no need to stop them.
    start_http_server(metrics_port, addr=service.bind_addr())
    log.info(
        "probe observing rabbitmq %s queues %s, metrics on http://127.0.0.1:%d/metrics",
        url,
        ",".join(queues),
        metrics_port,
    )
    stop.wait()
    log.info("probe stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
