"""Deploy planning: every port is picked before anything starts, named ports included."""

from __future__ import annotations

from pathlib import Path

from harness.deploy.base import layout, plan
from harness.deploy.ports import PortAllocator
from harness.loader import load_experiment

REPO = Path(__file__).resolve().parents[2]


def test_named_ports_are_free_distinct_and_reach_their_component_and_others(
    tmp_path: Path,
) -> None:
    """RabbitMQ listens on four ports; its probe reads the plugin's by {addr:broker:prometheus},
    and Prometheus scrapes the broker on that port rather than on AMQP's."""
    experiment = load_experiment(REPO / "experiments" / "crashed-workers.yaml", ["target=rabbitmq"])
    topology = experiment.topology
    where = layout(topology, PortAllocator(seed=1))
    instances = {
        i.name: i for layer in plan(topology, REPO / "targets", tmp_path, where) for i in layer
    }
    broker, probe = instances["broker"], instances["probe"]
    named = where.named["broker"][0]
    assert sorted(named) == ["dist", "epmd", "prometheus"]
    every_port = [p for ports in where.ports.values() for p in ports]
    every_port += [*where.links.values(), *named.values()]
    assert len(set(every_port)) == len(every_port)
    assert broker.env["AMQP_PORT"] == str(broker.port)
    assert (broker.env["DIST_PORT"], broker.env["EPMD_PORT"]) == (
        str(named["dist"]),
        str(named["epmd"]),
    )
    assert broker.metrics_port == named["prometheus"] != broker.port
    assert probe.env["PROMETHEUS_ADDR"] == f"127.0.0.1:{named['prometheus']}"
    assert probe.metrics_port == probe.port
    assert topology.dependencies()["probe"] == {"broker"}


def test_a_link_leads_to_the_port_named_after_its_source_when_there_is_one(
    tmp_path: Path,
) -> None:
    """Kafka advertises one address per listener: each client's link leads to its own listener,
    which is advertised as that link's proxy, so every connection stays behind the proxy."""
    topology = load_experiment(
        REPO / "experiments" / "slow-consumer.yaml", ["target=kafka"]
    ).topology
    where = layout(topology, PortAllocator(seed=2))
    named = where.named["broker"][0]
    assert where.upstream("api->broker") == named["api"]
    assert where.upstream("worker->broker") == named["worker"]
    assert where.upstream("worker->sink") == where.ports["sink"][0]
    layers = plan(topology, REPO / "targets", tmp_path, where)
    broker = next(i for layer in layers for i in layer if i.name == "broker")
    listeners = dict(entry.split("=", 1) for entry in broker.env["LISTENERS"].split(","))
    assert listeners["worker"] == f"{named['worker']}=127.0.0.1:{where.links['worker->broker']}"
