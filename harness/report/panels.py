"""The key series of an async system, drawn alike on the Grafana dashboards and in report.html.

One catalogue serves both, so a chart in the report and a panel on a dashboard can never
disagree about what they show. Queries use Grafana's variables (``$target``, ``$queue``,
``$__rate_interval``); ``concrete`` fills them in for one run.
"""

from __future__ import annotations

from dataclasses import dataclass

# The rate window in a run's own Prometheus, which scrapes every second.
RUN_RATE_WINDOW = "5s"


@dataclass(frozen=True)
class Query:
    legend: str
    expr: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str  # Grafana's unit id: "short", "s", "reqps", "percentunit"
    queries: tuple[Query, ...]
    # Shown in the report beside the chart, and as the panel's description.
    why: str

    def reads(self, metric: str) -> bool:
        return any(metric in query.expr for query in self.queries)


@dataclass(frozen=True)
class Broker:
    """A reference target's own panels, and the metrics of the overview it cannot export (its
    target file's ``lacks``: a test keeps the two alike)."""

    panels: tuple[Panel, ...]
    lacks: tuple[str, ...] = ()


# The dashboards' variables: name → (series whose label values it offers, the label). The
# target is read from any harness series, so a stand without load (`harness up`) has one too.
VARIABLES: dict[str, tuple[str, str]] = {
    "target": ('{__name__=~"harness_.+"}', "target"),
    "queue": ('harness_queue_depth{target=~"$target"}', "queue"),
}

_Q = '{target=~"$target", queue=~"$queue"}'
_T = '{target=~"$target"}'
_W = "[$__rate_interval]"


def _rate(metric: str, selector: str = _Q) -> str:
    return f"sum(rate({metric}{selector}{_W}))"


def _quantile(q: float, histogram: str, selector: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{selector}{_W})))"


OVERVIEW: tuple[Panel, ...] = (
    Panel(
        "Backlog",
        "short",
        (
            Query("waiting", f"sum(harness_queue_depth{_Q})"),
            Query("in flight", f"sum(harness_queue_inflight{_Q})"),
            Query("delayed retries", f"sum(harness_queue_delayed{_Q})"),
        ),
        "Messages accepted but not yet processed: what grows when consumers fall behind.",
    ),
    Panel(
        "Consumer lag",
        "short",
        (Query("lag", f"sum(harness_consumer_lag{_Q})"),),
        "Messages the consumers have not acknowledged yet: how far behind the producers they are.",
    ),
    Panel(
        "Oldest message age",
        "s",
        (Query("oldest waiting", f"max(harness_oldest_message_age_seconds{_Q})"),),
        "How long the oldest waiting message has waited: lag in time, what users feel.",
    ),
    Panel(
        "Throughput",
        "reqps",
        (
            Query("produced/s", _rate("harness_messages_produced_total")),
            Query("processed/s", _rate("harness_messages_processed_total")),
        ),
        "Messages accepted by the producer and applied by the sink, per second.",
    ),
    Panel(
        "End-to-end latency",
        "s",
        tuple(
            Query(f"p{int(q * 100)}", _quantile(q, "harness_end_to_end_latency_seconds", _Q))
            for q in (0.5, 0.95, 0.99)
        ),
        "From the producer accepting a message to the sink applying it.",
    ),
    Panel(
        "Retries, duplicates and dead letters",
        "reqps",
        (
            Query("retried/s", _rate("harness_messages_retried_total")),
            Query("duplicates/s", _rate("harness_duplicates_total")),
            Query("dead-lettered/s", _rate("harness_dlq_messages_total")),
        ),
        "Work done again, work applied twice, and work given up on.",
    ),
    Panel(
        "Dead-letter queue",
        "short",
        (Query("dead letters", f"sum(harness_dlq_depth{_Q})"),),
        "Messages parked after their last attempt; each needs a person.",
    ),
    Panel(
        "Producer refusals",
        "reqps",
        (
            Query("back-pressure/s", _rate("harness_backpressure_rejections_total")),
            Query("broker errors/s", _rate("harness_api_errors_total")),
        ),
        "Messages the producer refused: on purpose (back-pressure) or because the broker failed.",
    ),
    Panel(
        "Load: requests by outcome",
        "reqps",
        (
            Query(
                "{{outcome}}",
                f"sum by (outcome) (rate(harness_load_requests_total{_T}{_W}))",
            ),
            # Over the same window as the rates beside it, so that it spans the same time.
            Query("offered", f"sum(last_over_time(harness_load_target_rate{_T}{_W}))"),
        ),
        "What Locust sent per second, by what the producer answered, and the rate it aimed "
        "for (a load's shape draws its phases here).",
    ),
    Panel(
        "Load: request latency",
        "s",
        tuple(
            Query(f"p{int(q * 100)}", _quantile(q, "harness_load_request_duration_seconds", _T))
            for q in (0.5, 0.95)
        ),
        "How long the producer took to answer Locust.",
    ),
)


def _broker(name: str, length: Panel | None, *own: Panel) -> tuple[Panel, ...]:
    """The panels every reference broker has (from its probe and its relay), around its own."""
    shared_length = () if length is None else (length,)
    return (
        Panel(
            f"{name}: broker reachable",
            "short",
            (Query("up", f"min(harness_probe_broker_up{_T})"),),
            f"1 while the probe reaches {name}; 0 through a broker crash or partition.",
        ),
        *shared_length,
        Panel(
            f"{name}: lag by consumer group",
            "short",
            (Query("{{group}}", f"sum by (group) (harness_consumer_lag{_Q})"),),
            "Messages each consumer group has not acknowledged yet.",
        ),
        *own,
        Panel(
            f"{name}: notifications",
            "reqps",
            (
                Query("enqueued/s", _rate("harness_notifications_enqueued_total")),
                Query("relayed/s", _rate("harness_notifications_relayed_total")),
                Query("relay failures/s", _rate("harness_relay_failures_total")),
            ),
            "The outbox: notifications owed, carried and failed.",
        ),
    )


def _length(name: str, what: str) -> Panel:
    return Panel(
        f"{name}: {what} length",
        "short",
        (Query("{{queue}}", f"sum by (queue) (harness_stream_length{_T})"),),
        f"Messages each {what} keeps, acknowledged or not.",
    )


# Each reference target's own broker series. RabbitMQ's come from its Prometheus plugin too.
BROKERS: dict[str, Broker] = {
    "redis-streams": Broker(_broker("Redis", _length("Redis", "stream"))),
    "rabbitmq": Broker(
        _broker(
            "RabbitMQ",
            None,
            Panel(
                "RabbitMQ: messages by queue",
                "short",
                (
                    Query(
                        "{{queue}} ready",
                        f"sum by (queue) (rabbitmq_queue_messages_ready{_T})",
                    ),
                    Query(
                        "{{queue}} unacknowledged",
                        f"sum by (queue) (rabbitmq_queue_messages_unacked{_T})",
                    ),
                ),
                "What the broker reports per queue: waiting, and delivered but not acknowledged.",
            ),
            Panel(
                "RabbitMQ: redeliveries and dead letters",
                "reqps",
                (
                    Query(
                        "redelivered/s",
                        f"sum(rate(rabbitmq_global_messages_redelivered_total{_T}{_W}))",
                    ),
                    Query(
                        "dead-lettered/s",
                        'sum(rate({__name__=~"rabbitmq_global_messages_dead_lettered_.*_total"'
                        f', target=~"$target"}}{_W}))',
                    ),
                ),
                "Deliveries flagged redelivered, and messages the queue itself dead-lettered.",
            ),
        ),
        lacks=("harness_oldest_message_age_seconds",),
    ),
    "nats": Broker(_broker("NATS", _length("NATS", "stream"))),
    "kafka": Broker(_broker("Kafka", _length("Kafka", "topic"))),
}


def concrete(expr: str, target: str, queue: str, window: str = RUN_RATE_WINDOW) -> str:
    """The query with Grafana's variables filled in for one run's own Prometheus."""
    return (
        expr.replace("$__rate_interval", window)
        .replace('=~"$target"', f'="{target}"')
        .replace('=~"$queue"', f'="{queue}"')
    )


def for_target(target: str) -> tuple[Panel, ...]:
    """The overview panels, then the target broker's own."""
    broker = BROKERS.get(target)
    return OVERVIEW + (broker.panels if broker else ())
