"""A load that publishes straight into the broker: what loads, what is refused with its file,
line and field, and what the load process is told."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.load import LoadPlan, LoadProcess, Publish, load_address
from harness.load.process import USER_CLASSES
from harness.loader import load_experiment, load_topology
from harness.topology import LoadTarget
from tests.conftest import ROOT

TOPOLOGY = """\
name: mini
queue: work
components:
  broker:
    command: [redis-server, --port, "{port}"]
  worker:
    command: ["{python}", worker.py]
    env:
      REDIS_ADDR: "{link:worker->broker}"
links: [worker->broker]
load:
  component: broker
  body: '{"id": "{id}"}'
  publish: {into: redis-stream}
"""


def load_with(tmp_path: Path, publish: str) -> LoadTarget:
    text = TOPOLOGY.replace("publish: {into: redis-stream}", publish)
    path = tmp_path / "targets" / "mini.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return load_topology(path).load


def test_a_publishing_load_defaults_to_the_queue_and_the_body_field(tmp_path: Path) -> None:
    load = load_with(tmp_path, "publish: {into: redis-stream}")
    assert load.publish is not None and load.publish.into == "redis-stream"
    assert Publish.of(load, "work") == Publish("redis-stream", "work", "work", "body")
    host, publish = load_address(load, "work", 6400)
    assert host == "redis://127.0.0.1:6400" and publish is not None
    assert publish.describe(6400) == "redis://127.0.0.1:6400 (XADD work, body in field body)"


def test_rabbitmq_routes_by_the_name_unless_told_and_takes_the_default_exchange(
    tmp_path: Path,
) -> None:
    load = load_with(tmp_path, "publish: {into: rabbitmq, name: events}")
    assert Publish.of(load, "work") == Publish("rabbitmq", "events", "events", "body")
    load = load_with(tmp_path, "publish: {into: rabbitmq, name: '', routing_key: work}")
    publish = Publish.of(load, "work")
    assert publish == Publish("rabbitmq", "", "work", "body")
    assert publish.describe(5672) == (
        "amqp://127.0.0.1:5672 (exchange '' (the default), routing key work)"
    )


def test_without_publish_the_load_posts_as_before(tmp_path: Path) -> None:
    load = LoadTarget(component="api")
    assert Publish.of(load, "jobs") is None
    assert load_address(load, "jobs", 8000) == ("http://127.0.0.1:8000", None)


def plan(tmp_path: Path, publish: Publish | None) -> LoadPlan:
    return LoadPlan(
        host="redis://127.0.0.1:6400" if publish else "http://127.0.0.1:8000",
        path="/jobs",
        rate=10,
        duration_s=1,
        metrics_port=9999,
        ledger_path=tmp_path / "sent.jsonl",
        log_path=tmp_path / "load.log",
        publish=publish,
    )


def test_locust_is_told_the_user_class_and_where_to_publish(tmp_path: Path) -> None:
    command = LoadProcess(plan(tmp_path, Publish("kafka", "events", "events"))).command()
    assert command[-1] == "KafkaPublisher"
    assert command[command.index("--harness-publish-name") + 1] == "events"
    assert command[command.index("--host") + 1] == "redis://127.0.0.1:6400"
    http = LoadProcess(plan(tmp_path, None)).command()
    assert http[-1] == "Producer" and "--harness-publish-name" not in http


def test_every_way_of_publishing_has_a_user_class_in_the_locustfile() -> None:
    text = (Path(__file__).resolve().parents[2] / "harness" / "load" / "locustfile.py").read_text()
    for name in USER_CLASSES.values():
        assert f"\nclass {name}(" in text


CASES = [
    ("publish: {into: kafka, routing_key: x}", "load.publish.routing_key",
     "routing_key is for rabbitmq only; kafka has no routing key"),
    ("publish: {into: redis-list, field: data}", "load.publish.field",
     "field is for redis-stream only; redis-list has no entry fields"),
    ("publish: {into: redis-stream, field: id}", "load.publish.field",
     'other than "id" (which holds the message id)'),
    ("publish: {into: nats, name: ''}", "load.publish.name",
     "an empty name is no nats destination"),
    ("publish: {into: rabbitmq, name: ''}", "load.publish.routing_key",
     "the default exchange ('') routes to the queue named by the routing key"),
    ("publish: {into: nats, name: 'jobs.*'}", "load.publish.name",
     "'jobs.*' is no subject to publish to"),
    ("publish: {into: sqs}", "load.publish.into", "'redis-stream', 'redis-list', 'rabbitmq'"),
    ("publish: {into: kafka, topic: x}", "load.publish.topic", "unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(("publish", "field", "message"), CASES)
def test_a_publish_that_does_not_fit_its_broker_is_refused_with_its_line(
    tmp_path: Path, publish: str, field: str, message: str
) -> None:
    with pytest.raises(SpecError) as raised:
        load_with(tmp_path, publish)
    error = raised.value
    assert error.file == str(tmp_path / "targets" / "mini.yaml")
    line = TOPOLOGY.splitlines().index("  publish: {into: redis-stream}") + 1
    assert (error.line, error.field) == (line, field)
    assert message in error.message


def test_a_nats_load_without_a_name_publishes_to_the_queue_which_must_be_a_subject(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mini.yaml"
    text = TOPOLOGY.replace("queue: work", "queue: 'my jobs'")
    path.write_text(text.replace("publish: {into: redis-stream}", "publish: {into: nats}"))
    with pytest.raises(SpecError) as raised:
        load_topology(path)
    assert (raised.value.line, raised.value.field) == (2, "queue")
    assert "'my jobs' is no subject to publish to" in raised.value.message


def test_the_open_model_runs_one_user_per_process_and_tells_locust_its_room(
    tmp_path: Path,
) -> None:
    closed = plan(tmp_path, None)
    opened = dataclasses.replace(closed, rate=400, model="open", max_in_flight=300)
    assert (closed.user_count, opened.user_count) == (1, 1)
    assert dataclasses.replace(closed, rate=400).user_count == 20
    command = LoadProcess(opened).command()
    assert command[command.index("--harness-model") + 1] == "open"
    assert command[command.index("--harness-max-in-flight") + 1] == "300"
    assert command[command.index("--users") + 1] == "1"


def with_load(folder: Path, load: str) -> Path:
    """The shipped slow-consumer with another load line."""
    path = folder / "load.yaml"
    text = (ROOT / "experiments" / "slow-consumer.yaml").read_text()
    path.write_text(re.sub(r"^load: .*$", f"load: {load}", text, count=1, flags=re.M))
    return path


@pytest.mark.parametrize(
    ("load", "why"),
    [
        ("{rate: 50/s, duration: 5s, model: open, users: 4}", "users is the closed model's"),
        ("{rate: 50/s, duration: 5s, model: open, key: 'k{seq % 4}'}", "a keyed load is closed"),
        ("{rate: 50/s, duration: 5s, users: 4, max_in_flight: 40}", "max_in_flight is the open"),
        ("{rate: 50/s, duration: 5s, model: closed, max_in_flight: 40}", "max_in_flight is the"),
        ("{rate: 50/s, duration: 5s, model: opened}", "'closed' or 'open'"),
    ],
)
def test_what_the_open_model_does_not_take_is_refused(tmp_path: Path, load: str, why: str) -> None:
    with pytest.raises(SpecError, match=why) as refused:
        load_experiment(with_load(tmp_path, load))
    assert refused.value.field.startswith("load")


@pytest.mark.parametrize(
    ("load", "arrivals"),
    [
        ("{rate: 50/s, duration: 30s}", "open"),
        ("{rate: 50/s, duration: 30s, users: 4}", "closed"),
        ("{rate: 50/s, duration: 30s, key: 'k{seq % 4}'}", "closed"),
        ("{rate: 50/s, duration: 30s, model: closed}", "closed"),
        ("{shape: {ramp: {from: 1/s, to: 5/s, over: 30s}}, duration: 30s}", "open"),
    ],
)
def test_a_rate_is_open_unless_the_closed_models_own_fields_are_given(
    tmp_path: Path, load: str, arrivals: str
) -> None:
    assert load_experiment(with_load(tmp_path, load)).spec.load.arrivals == arrivals


def test_the_open_models_room_defaults_to_a_timeout_of_sends(tmp_path: Path) -> None:
    path = with_load(tmp_path, "{rate: 200/s, duration: 60s, model: open}")
    assert load_experiment(path).spec.load.in_flight_cap == 1000


LEDGER_LINES = """\
import json, sys
sys.path.insert(0, sys.argv[1])
import locustfile
locustfile._record_invoke("0000001a-3-17", 1796665435.2253153, 1796665435.22531, None)
locustfile._record_invoke("0000001a-3-18", 1796665435.5, 1796665435.0, 'k"\\\\é 1')
locustfile._record_outcome("0000001a-3-17", "ok", 1796665436.0, 202, None)
locustfile._record_outcome("0000001a-3-18", "info", 1.5, None, 'ConnectionRefusedError: "no"\\n')
print(json.dumps(locustfile.pending.lines))
"""


def test_the_ledger_lines_written_by_hand_are_what_json_would_write(tmp_path: Path) -> None:
    """The load formats its ledger lines itself (its ceiling): each must parse, and read the
    same as json.dumps of its fields, escapes included."""
    folder = ROOT / "harness" / "load"
    found = subprocess.run(
        [sys.executable, "-c", LEDGER_LINES, str(folder)], capture_output=True, text=True,
        check=True, cwd=tmp_path,
    )  # fmt: skip
    lines = json.loads(found.stdout.splitlines()[-1])
    expected = [
        {"id": "0000001a-3-17", "type": "invoke", "t": 1796665435.2253153, "due": 1796665435.22531},
        {"id": "0000001a-3-18", "type": "invoke", "t": 1796665435.5, "due": 1796665435.0,
         "key": 'k"\\é 1'},
        {"id": "0000001a-3-17", "type": "ok", "t": 1796665436.0, "status": 202, "error": None},
        {"id": "0000001a-3-18", "type": "info", "t": 1.5, "status": None,
         "error": 'ConnectionRefusedError: "no"\n'},
    ]  # fmt: skip
    assert lines == [json.dumps(fields) + "\n" for fields in expected]
