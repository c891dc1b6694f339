"""The run's Prometheus, real: it scrapes a target at 1 s, and PromQL reads instants and ranges."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from harness import components
from harness.deploy.ports import PortAllocator
from harness.observe.prometheus import Prometheus, ScrapeTarget
from harness.observe.promql import PromQL, PromQLError

pytestmark = [pytest.mark.integration]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[PromQL, Gauge]]:
    ports = PortAllocator()
    registry = CollectorRegistry()
    depth = Gauge("harness_queue_depth", "waiting", ["queue"], registry=registry)
    depth.labels("jobs").set(42)
    app_port = ports.allocate()
    server, _thread = start_http_server(app_port, addr="127.0.0.1", registry=registry)
    prom = Prometheus(
        components.find("prometheus"),
        ports.allocate(),
        tmp_path,
        [ScrapeTarget("app", app_port, labels={"instance_name": "app"})],
    )
    prom.start()
    prom.wait_ready()
    client = PromQL(prom.url)
    try:
        yield client, depth
    finally:
        client.close()
        prom.stop()
        server.shutdown()


def wait_for(client: PromQL, query: str, timeout_s: float = 20) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples = client.instant(query)
        if samples:
            return samples[0].value
        time.sleep(0.2)
    raise AssertionError(f"{query} returned nothing within {timeout_s} s")


def test_scrapes_and_answers_instant_and_range_queries(prometheus: tuple[PromQL, Gauge]) -> None:
    client, depth = prometheus
    assert wait_for(client, 'harness_queue_depth{queue="jobs"}') == 42
    first = time.time()
    depth.labels("jobs").set(7)
    assert wait_for(client, "harness_queue_depth == 7") == 7
    # Steps are start + k s; ending 1 s late makes the last step come after the newest sample.
    (series,) = client.range("harness_queue_depth", first - 5, time.time() + 1, 1)
    values = [v for _, v in series.points]
    assert values[0] == 42 and values[-1] == 7
    assert series.labels["instance_name"] == "app"
    assert client.instant("harness_queue_depth > 1000") == []  # no data, not zero
    assert client.instant("vector(3)")[0].value == 3


def test_a_bad_query_is_a_promql_error(prometheus: tuple[PromQL, Gauge]) -> None:
    client, _ = prometheus
    with pytest.raises(PromQLError, match="bad_data"):
        client.instant("sum(")


def test_an_existing_prometheus_is_read_alongside(
    prometheus: tuple[PromQL, Gauge], tmp_path: Path
) -> None:
    """Series an existing Prometheus scraped (a staging system's) reach the run's queries,
    while the run's own scrape health stays the run's own."""
    client, _ = prometheus
    ports = PortAllocator()
    registry = CollectorRegistry()
    Gauge("staging_backlog", "waiting in staging", registry=registry).set(5)
    app_port = ports.allocate()
    server, _thread = start_http_server(app_port, addr="127.0.0.1", registry=registry)
    for folder in ("existing", "run"):
        (tmp_path / folder / "logs").mkdir(parents=True)
    existing = Prometheus(
        components.find("prometheus"), ports.allocate(), tmp_path / "existing",
        [ScrapeTarget("staging", app_port)],
    )  # fmt: skip
    existing.start()
    existing.wait_ready()
    runs = Prometheus(
        components.find("prometheus"), ports.allocate(), tmp_path / "run",
        [ScrapeTarget("app", ports.allocate(), labels={"instance_name": "app"})],
        read_from=existing.url,
    )  # fmt: skip
    runs.start()
    runs.wait_ready()
    through = PromQL(runs.url)
    try:
        assert wait_for(through, "staging_backlog") == 5
        wait_for(through, 'up{job="app"}')  # the run's own first scrape (of a port that is shut)
        assert {s.labels["job"] for s in through.instant("up")} == {"app", "staging"}
        assert [s.labels["job"] for s in through.instant('up{instance_name!=""}')] == ["app"]
        assert client.instant("staging_backlog") == []  # a run without read_from sees none
    finally:
        through.close()
        runs.stop()
        existing.stop()
        server.shutdown()
