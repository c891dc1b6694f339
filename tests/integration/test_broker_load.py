"""The load that publishes straight into a broker, against real brokers: Redis, RabbitMQ, Kafka
and NATS JetStream, each deployed once for the module by the harness's own deployer from its
reference target's broker component. Every send's ledger outcome is checked against what the
broker then holds: what was acknowledged is there once with its body and its id, what was
refused is not, and a broker that cannot be reached or dies mid-run gives ``info``, never ``ok``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import redis
import yaml
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness.deploy import base, local
from harness.deploy.ports import PortAllocator
from harness.ledger.files import SendOutcome, read_sends
from harness.load import LoadPlan, LoadProcess, Publish
from harness.topology import TopologySpec
from tests.conftest import ROOT
from tests.integration.redis_streams_stack import free_port

pytestmark = [pytest.mark.integration]

RATE = 50.0
DURATION_S = 3.0
BODY = '{"id": "{id}", "seq": {seq}}'
TARGETS = {  # how the load writes → the reference target whose broker it writes into
    "redis-stream": "redis-streams",
    "redis-list": "redis-streams",
    "rabbitmq": "rabbitmq",
    "kafka": "kafka",
    "nats": "nats",
}


class Brokers:
    """Each reference broker, deployed on first use and stopped at the end of the module."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.deployed: dict[str, local.LocalDeployment] = {}
        self.lock = threading.Lock()

    def port(self, target: str) -> int:
        return self.deployment(target).instances[0].port

    def deployment(self, target: str) -> local.LocalDeployment:
        with self.lock:
            if target not in self.deployed:
                self.deployed[target] = self._deploy(target)
            return self.deployed[target]

    def _deploy(self, target: str) -> local.LocalDeployment:
        data = yaml.safe_load((ROOT / "targets" / f"{target}.yaml").read_text())
        broker = data["components"]["broker"]
        if target == "kafka":  # no client components here: no listeners of their own
            broker["env"]["LISTENERS"] = ""
            broker["ports"] = ["controller"]
        topology = TopologySpec.model_validate(
            {"name": target, "components": {"broker": broker}, "load": {"component": "broker"}}
        )
        where = base.layout(topology, PortAllocator())
        run_dir = self.folder / target
        deployment = local.LocalDeployment(base.plan(topology, ROOT / "targets", run_dir, where))
        self.deployed[target] = deployment  # stopped at the end even if it never got ready
        deployment.up()
        return deployment

    def down(self) -> None:
        for deployment in self.deployed.values():
            deployment.down()


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    made = Brokers(tmp_path_factory.mktemp("brokers"))
    try:
        yield made
    finally:
        made.down()


def run_load(
    tmp_path: Path,
    started: list[LoadProcess],
    publish: Publish,
    port: int,
    **overrides: Any,
) -> LoadProcess:
    """A real Locust run publishing into the broker at port; returns once it started."""
    fields: dict[str, Any] = {
        "host": publish.url(port),
        "path": "/unused",
        "body": BODY,
        "publish": publish,
        "rate": RATE,
        "duration_s": DURATION_S,
        "metrics_port": free_port(),
        "ledger_path": tmp_path / "ledger" / "sent.jsonl",
        "log_path": tmp_path / "load.log",
        "seed": 0xB20CE2,
    }
    fields.update(overrides)
    process = LoadProcess(LoadPlan(**fields))
    started.append(process)
    process.start()
    return process


def finish(process: LoadProcess) -> dict[str, SendOutcome]:
    assert process.wait(timeout=60) == 0, process.tail()
    return read_sends(process.plan.ledger_path)


def completions(process: LoadProcess) -> list[dict[str, Any]]:
    lines = process.plan.ledger_path.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] != "invoke"]


def body_of(message_id: str) -> str:
    """The body the load made for an id (``SEED-USER-SEQ``), by the template."""
    seq = message_id.rsplit("-", 1)[1]
    return BODY.replace("{id}", message_id).replace("{seq}", seq)


# ---------------------------------------------------------- reading brokers back


def read_redis_stream(port: int, key: str) -> list[tuple[str, str]]:
    client = redis.Redis(port=port, decode_responses=True)
    return [(fields["id"], fields["body"]) for _, fields in client.xrange(key)]


def read_redis_list(port: int, key: str) -> list[tuple[str, str]]:
    client = redis.Redis(port=port, decode_responses=True)
    return [(json.loads(body)["id"], body) for body in client.lrange(key, 0, -1)]


def amqp(port: int) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))


def rabbitmq_exchange(port: int, exchange: str, bound_queue: str | None) -> None:
    connection = amqp(port)
    channel = connection.channel()
    channel.exchange_declare(exchange, "direct", durable=True)
    if bound_queue is not None:
        channel.queue_declare(bound_queue, durable=True)
        channel.queue_bind(bound_queue, exchange, routing_key=bound_queue)
    connection.close()


def read_rabbitmq(port: int, queue: str) -> list[tuple[str, str]]:
    connection = amqp(port)
    channel = connection.channel()
    found = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        assert properties.delivery_mode == 2 and properties.content_type == "application/json"
        found.append((properties.message_id, body.decode()))
    connection.close()
    return found


def kafka_topic(port: int, topic: str) -> None:
    """Made beforehand: the first records to a topic created on the fly may find no leader."""
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(
        timeout=30
    )


def read_kafka(port: int, topic: str) -> list[tuple[str, str]]:
    consumer = Consumer(
        {
            "bootstrap.servers": f"127.0.0.1:{port}",
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}  # fmt: skip
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        found: list[tuple[str, str]] = []
        positions = dict.fromkeys(partitions, 0)
        deadline = time.monotonic() + 30
        while any(positions[p] < ends[p] for p in partitions) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            assert dict(message.headers() or []) == {"content-type": b"application/json"}
            found.append((message.key().decode(), message.value().decode()))
            positions[message.partition()] = message.offset() + 1
        return found
    finally:
        consumer.close()


def nats_stream(port: int, stream: str, subject: str) -> None:
    async def declare() -> None:
        import nats

        client = await nats.connect(f"nats://127.0.0.1:{port}")
        await client.jetstream().add_stream(name=stream, subjects=[subject])
        await client.close()

    asyncio.run(declare())


def read_nats(port: int, stream: str) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        import nats

        client = await nats.connect(f"nats://127.0.0.1:{port}")
        js = client.jetstream()
        info = await js.stream_info(stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            headers = message.headers or {}
            assert headers.get("Content-Type") == "application/json"
            found.append((headers["Nats-Msg-Id"], message.data.decode()))
        await client.close()
        return found

    return asyncio.run(read())


def prepare(brokers: Brokers, into: str, name: str) -> int:
    """The broker's port, with what the load writes into made ready where it must be."""
    port = brokers.port(TARGETS[into])
    if into == "rabbitmq":
        rabbitmq_exchange(port, name, bound_queue=name)
    elif into == "kafka":
        kafka_topic(port, name)
    elif into == "nats":
        nats_stream(port, name.upper(), name)
    return port


def read_back(into: str, port: int, name: str) -> list[tuple[str, str]]:
    """Every message the broker holds there, as (its id from the broker's metadata, body)."""
    if into == "redis-stream":
        return read_redis_stream(port, name)
    if into == "redis-list":
        return read_redis_list(port, name)
    if into == "rabbitmq":
        return read_rabbitmq(port, name)
    if into == "kafka":
        return read_kafka(port, name)
    return read_nats(port, name.upper())


def assert_exactly_the_acknowledged(
    sends: dict[str, SendOutcome], held: list[tuple[str, str]]
) -> None:
    acknowledged = {i for i, outcome in sends.items() if outcome is SendOutcome.OK}
    ids = [message_id for message_id, _ in held]
    assert len(ids) == len(set(ids)), "a message is in the broker twice"
    assert acknowledged <= set(ids), f"acknowledged, not in the broker: {acknowledged - set(ids)}"
    refused = {i for i, outcome in sends.items() if outcome is SendOutcome.FAIL}
    assert not refused & set(ids), "refused, yet in the broker"
    assert set(ids) <= set(sends), "in the broker, never sent"
    for message_id, body in held:
        assert body == body_of(message_id)


# ------------------------------------------------------------------- the tests


@pytest.mark.parametrize("model", ["closed", "open"])
@pytest.mark.parametrize("into", list(TARGETS))
def test_what_the_broker_acknowledged_is_there_once_with_its_body(
    brokers: Brokers, tmp_path: Path, started: list[LoadProcess], into: str, model: str
) -> None:
    """Either model of arrivals: the open one's sends in flight each take a publisher."""
    name = f"load-{into}-{model}"
    port = prepare(brokers, into, name)
    publish = Publish(into, name, routing_key=name)  # type: ignore[arg-type]
    process = run_load(tmp_path, started, publish, port, model=model, max_in_flight=50)
    sends = finish(process)

    assert set(sends.values()) == {SendOutcome.OK}, completions(process)[:5]
    assert 60 <= len(sends) <= 180  # loose: the machine is shared
    held = read_back(into, port, name)
    assert len(held) == len(sends)
    assert_exactly_the_acknowledged(sends, held)


def test_a_rabbitmq_message_no_queue_takes_is_refused_as_unroutable(
    brokers: Brokers, tmp_path: Path, started: list[LoadProcess]
) -> None:
    port = brokers.port("rabbitmq")
    rabbitmq_exchange(port, "nowhere", bound_queue=None)
    publish = Publish("rabbitmq", "nowhere", routing_key="jobs")
    process = run_load(tmp_path, started, publish, port, duration_s=1.0)
    sends = finish(process)

    assert sends and set(sends.values()) == {SendOutcome.FAIL}
    assert {r["error"] for r in completions(process)} == {
        "unroutable: no queue is bound for it, the broker returned it"
    }


def test_a_rabbitmq_exchange_that_does_not_exist_refuses_every_message(
    brokers: Brokers, tmp_path: Path, started: list[LoadProcess]
) -> None:
    """The broker closes the channel (404); the next send opens another on the connection."""
    port = brokers.port("rabbitmq")
    publish = Publish("rabbitmq", "no-such-exchange", routing_key="jobs")
    process = run_load(tmp_path, started, publish, port, duration_s=1.0)
    sends = finish(process)

    assert len(sends) > 10 and set(sends.values()) == {SendOutcome.FAIL}
    assert all("NOT_FOUND" in r["error"] for r in completions(process))


def test_a_jetstream_subject_without_a_stream_is_refused(
    brokers: Brokers, tmp_path: Path, started: list[LoadProcess]
) -> None:
    port = brokers.port("nats")
    process = run_load(tmp_path, started, Publish("nats", "no.stream.here"), port, duration_s=1.0)
    sends = finish(process)

    assert sends and set(sends.values()) == {SendOutcome.FAIL}
    assert {(r["status"], r["error"]) for r in completions(process)} == {
        (503, "no responders: no stream listens on the subject")
    }


def test_a_redis_error_reply_is_a_refusal(
    brokers: Brokers, tmp_path: Path, started: list[LoadProcess]
) -> None:
    port = brokers.port("redis-streams")
    redis.Redis(port=port).set("not-a-stream", "x")
    publish = Publish("redis-stream", "not-a-stream")
    process = run_load(tmp_path, started, publish, port, duration_s=1.0)
    sends = finish(process)

    assert sends and set(sends.values()) == {SendOutcome.FAIL}
    assert all(r["error"].startswith("ResponseError: WRONGTYPE") for r in completions(process))


@pytest.mark.parametrize("into", list(TARGETS))
def test_a_broker_that_does_not_answer_leaves_every_send_indeterminate(
    tmp_path: Path, started: list[LoadProcess], into: str
) -> None:
    publish = Publish(into, "jobs", routing_key="jobs")  # type: ignore[arg-type]
    process = run_load(tmp_path, started, publish, free_port(), duration_s=1.0, timeout_s=1.0)
    sends = finish(process)

    assert sends and set(sends.values()) == {SendOutcome.INFO}, completions(process)[:3]
    errors = {r["error"] for r in completions(process)}
    assert all(e and not e.endswith(": ") for e in errors), errors  # each says what happened


@pytest.mark.parametrize("into", ["redis-stream", "nats"])
def test_a_broker_killed_mid_run_gives_info_and_the_load_reconnects_once_it_is_back(
    brokers: Brokers, tmp_path: Path, started: list[LoadProcess], into: str
) -> None:
    """Killed with SIGKILL and started again (on the same port, its data kept): the sends in
    between are info, or fail when the broker answered that it refused them; the ones after
    are ok again, and every ok is in the broker."""
    target = TARGETS[into]
    name = f"restart-{into}"
    port = prepare(brokers, into, name)
    deployment = brokers.deployment(target)
    publish = Publish(into, name)  # type: ignore[arg-type]
    process = run_load(tmp_path, started, publish, port, duration_s=5.0, timeout_s=1.0)
    time.sleep(1.5)
    deployment.kill("broker")
    time.sleep(1.0)
    deployment.start("broker")
    t_back = time.time()
    sends = finish(process)

    outcomes = set(sends.values())
    assert SendOutcome.INFO in outcomes and SendOutcome.OK in outcomes
    ok_after = [r for r in completions(process) if r["type"] == "ok" and r["t"] > t_back + 0.5]
    assert ok_after, "no send was acknowledged once the broker was back"
    assert_exactly_the_acknowledged(sends, read_back(into, port, name))


def test_a_master_and_workers_publish_into_one_ledger(
    brokers: Brokers, tmp_path: Path, started: list[LoadProcess]
) -> None:
    """The workers learn the user class and the broker's address from their master."""
    port = brokers.port("redis-streams")
    publish = Publish("redis-stream", "load-distributed")
    process = run_load(tmp_path, started, publish, port, workers=2, master_port=free_port())
    sends = finish(process)

    assert set(sends.values()) == {SendOutcome.OK} and 60 <= len(sends) <= 180
    held = read_redis_stream(port, "load-distributed")
    assert len(held) == len(sends)
    assert_exactly_the_acknowledged(sends, held)
    assert {int(i.split("-")[1]) % 2 for i in sends} == {0, 1}  # both workers sent


PUBLISHING_LOAD = (
    'load: {component: broker, body: \'{"id": "{id}", "seq": {seq}}\',\n'
    "       publish: {into: redis-stream, field: payload}}\n"
)
UNDER_A_PARTITION = """\
name: published-under-a-partition
target: {target}
load: {{rate: 100/s, duration: 10s}}
drain: 30s
timeline:
  - {{name: cut, at: 3s, for: 3s, fault: partition, link: worker->broker}}
checks:
  - name: the workers processed what was published
    query: sum(harness_messages_processed_total)
    at: end
    expect: "> 500"
  - {{name: nothing acknowledged is lost, ledger: lost, expect: "== 0"}}
"""


@pytest.mark.slow
def test_the_reference_redis_streams_workers_process_what_the_load_publishes(
    harness_cli, tmp_path: Path
) -> None:
    """The reference target without its API: the load XADDs each message itself, with the
    fields the workers read (``id``, and the body in ``payload``), and the run holds."""
    text = (ROOT / "targets" / "redis-streams.yaml").read_text()
    text = text.replace("{dir}", str(ROOT / "targets"))
    text = text.replace("load: {component: api, path: /jobs}\n", PUBLISHING_LOAD)
    assert PUBLISHING_LOAD in text
    target = tmp_path / "redis-streams-published.yaml"
    target.write_text(text)
    experiment = tmp_path / "published.yaml"
    experiment.write_text(UNDER_A_PARTITION.format(target=target))
    runs = tmp_path / "runs"

    result = harness_cli("run", str(experiment), "--runs-dir", str(runs), timeout=180)
    (run_dir,) = runs.iterdir()
    journal = json.loads((run_dir / "journal.json").read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    assert {c["verdict"] for c in journal["checks"]} == {"held"}, journal["checks"]
    ledger = journal["ledger"]
    assert ledger["acknowledged"] > 500 and ledger["lost"] == 0
    assert ledger["failed"] == ledger["indeterminate"] == 0
    assert ledger["processed"] == ledger["acknowledged"]
    # Nothing went through the API: every message came from the load, straight into Redis.
    entries = read_sends(run_dir / "ledger" / "sent.jsonl")
    assert len(entries) == ledger["acknowledged"]
