"""Experiment and topology files: what loads, and the FILE:LINE: FIELD: message of what does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.checks import LedgerCheck, RecoveryCheck, SometimesCheck, WindowCheck
from harness.errors import SpecError
from harness.faults.network import Latency
from harness.loader import load_experiment
from tests.conftest import ROOT

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = REPO / "targets" / "redis-streams.yaml"

EXPERIMENT = f"""\
name: mini
target: {TOPOLOGY}
load:
  rate: 200/s
  duration: 60s
timeline:
  - name: slow-link
    at: 15s
    for: 20s
    fault: latency
    link: worker->broker
    latency: 300
checks:
  - name: backlog builds
    query: sum(harness_queue_depth)
    at: fault.end
    expect: "> 500"
  - name: latency stays low
    query: sum(x)
    from: load.start
    to: load.end
    expect: "< 5"
  - name: nothing lost
    ledger: lost
    expect: "== 0"
"""


@pytest.fixture(autouse=True)
def _no_extra_target_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HARNESS_TARGETS", raising=False)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def edited(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def spec_error(path: Path, overrides: tuple[str, ...] = ()) -> SpecError:
    with pytest.raises(SpecError) as raised:
        load_experiment(path, overrides)
    return raised.value


# ------------------------------------------------------------ what loads


def test_the_shipped_slow_consumer_experiment_loads_against_redis_streams() -> None:
    experiment = load_experiment(REPO / "experiments" / "slow-consumer.yaml")
    assert experiment.name == "slow-consumer"
    assert experiment.topology_file.resolve() == TOPOLOGY
    assert experiment.topology.name == "redis-streams"
    assert experiment.spec.load.rate == 200.0
    assert experiment.spec.load.duration == 60.0
    [entry] = experiment.faults
    assert (entry.label, entry.kind, entry.at_s, entry.for_s) == ("slow-link", "latency", 15, 20)
    assert entry.targets == ("worker->broker",)
    assert entry.fault == Latency(latency=300, jitter=50)
    kinds = [type(check) for check in experiment.spec.checks]
    assert kinds == [SometimesCheck, RecoveryCheck, WindowCheck, LedgerCheck, LedgerCheck]


# ----------------------------------------------------- experiment errors


def case(name: str, *values: str) -> Any:
    return pytest.param(*values, id=name)


# (id, old text, new text, field, a fragment of the blamed line, a fragment of the message)
CASES = [
    case("short-time-limit", "checks:\n", "time_limit: 30s\nchecks:\n", "time_limit",
         "time_limit: 30s", "the time limit (30s) must be longer than the load (60s)"),
    case("bad-abort-condition", "checks:\n", "abort_if: ['sum(q) above 5']\nchecks:\n",
         "abort_if[0]", "abort_if", "expected"),
    case("unknown-top-level", "name: mini\n", "name: mini\ncolour: blue\n", "colour", "colour:",
         "unknown field"),
    case("missing-required", "  duration: 60s\n", "", "load.duration", "load:",
         "required field is missing"),
    case("unknown-fault", "fault: latency", "fault: latenccy", "timeline[0].fault",
         "fault: latenccy", "no fault 'latenccy'; faults are bandwidth, cpu_limit, cpu_stress"),
    case("missing-link", "link: worker->broker", "link: worker->brokr", "timeline[0].link",
         "link: worker->brokr",
         "no link 'worker->brokr'; links are api->broker, api->notifier, relay->broker, "
         "relay->notifier, worker->broker, worker->sink"),
    case("bad-duration", "for: 20s", "for: 20 seconds", "timeline[0].for", "for: 20 seconds",
         "expected a duration such as 500ms, 30s or 2m, got '20 seconds'"),
    case("zero-rate", "rate: 200/s", "rate: 0/s", "load.rate", "rate: 0/s",
         "a rate must be above zero"),
    case("bad-expectation", 'expect: "> 500"', 'expect: "=> 500"', "checks[0].expect",
         "=> 500", "expected a comparison such as '< 50'"),
    case("check-of-no-kind", "    ledger: lost\n", "", "checks[2]", "- name: nothing lost",
         "a check needs 'query' (with 'at', or 'during'/'from'+'to'), 'sometimes', 'recovers' or "
         "'ledger'"),
    case("unknown-span-at", "at: fault.end", "at: slowlink.end", "checks[0].at", "slowlink",
         "no span 'slowlink'; spans are fault, load, slow-link"),
    case("unknown-span-during", "    from: load.start\n    to: load.end\n",
         "    during: warmup\n", "checks[1].during", "during: warmup", "no span 'warmup'"),
    case("misspelt-attribute", "    latency: 300\n", "    latency: 300\n    jiter: 50\n",
         "timeline[0].jiter", "jiter: 50", "unknown field"),
    case("link-fault-on-component", "link: worker->broker", "component: worker", "timeline[0]",
         "- name: slow-link", "a latency fault acts on a link: give 'link'"),
    case("two-faults-one-name", "checks:\n",
         "  - {name: slow-link, at: 40s, for: 5s, fault: latency, link: api->broker, latency: 1}\n"
         "checks:\n", "timeline[1].name", "at: 40s", "two faults are named 'slow-link'"),
    case("unknown-override", "checks:\n", "overrides:\n  wrker: {replicas: 1}\nchecks:\n",
         "overrides.wrker", "wrker:",
         "no component 'wrker'; components are api, broker, notifier, probe"),
    case("misspelt-latency", "    latency: 300\n", "    latecny: 300\n", "timeline[0].latecny",
        "latecny", "unknown field"),
    case("unknown-span-to", "to: load.end", "to: nosuch.end", "checks[1].to", "to: nosuch.end",
        "no span 'nosuch'"),
    case("bad-ledger-quantity", "ledger: lost", "ledger: lots", "checks[2].ledger", "ledger: lots",
        "Input should be 'lost'"),
    case("during-and-from", "    to: load.end\n", "    during: load\n", "checks[1]",
        "- name: latency stays low", "give either 'during: <span>' or both 'from' and 'to'"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "field", "fragment", "message"), CASES)
def test_a_broken_experiment_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, fragment: str, message: str
) -> None:
    text = edited(EXPERIMENT, old, new)
    path = write(tmp_path / "exp.yaml", text)
    error = spec_error(path)
    line = line_of(text, fragment)
    assert (error.file, error.line, error.field) == (str(path), line, field)
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}: {field}: ")
    assert error.exit_code == 3


def test_a_misspelt_latency_is_refused(tmp_path: Path) -> None:
    """Toxiproxy takes a misspelt attribute as zero, so the harness must refuse it."""
    text = edited(EXPERIMENT, "    latency: 300\n", "    latecny: 300\n")
    error = spec_error(write(tmp_path / "exp.yaml", text))
    assert error.field.startswith("timeline[0].")


def test_malformed_yaml_names_the_line_of_the_problem(tmp_path: Path) -> None:
    text = edited(EXPERIMENT, "  rate: 200/s\n", " rate: 200/s\n")
    path = write(tmp_path / "exp.yaml", text)
    error = spec_error(path)
    assert error.line == line_of(text, "duration: 60s")
    assert str(error).startswith(f"{path}:{error.line}: not valid YAML: ")


def test_an_unknown_target_names_the_folders_it_looked_in(tmp_path: Path) -> None:
    path = write(tmp_path / "experiments" / "exp.yaml", edited(EXPERIMENT, str(TOPOLOGY), "nope"))
    error = spec_error(path)
    assert (error.line, error.field) == (2, "target")
    assert "no target 'nope'; looked in" in error.message
    assert str(tmp_path / "targets") in error.message


# ------------------------------------------------------- topology errors

MINI_TOPOLOGY = """\
name: mini
components:
  broker:
    command: [redis-server, --port, "{port}"]
  api:
    command: ["{python}", api.py]
    env:
      REDIS_ADDR: "{link:api->broker}"
  worker:
    replicas: 2
    command: ["{python}", worker.py]
    env:
      REDIS_ADDR: "{link:worker->broker}"
links:
  - api->broker
  - worker->broker
load: {component: api}
"""
LEDGER_ONLY = "name: on-mini\ntarget: mini\nload: {rate: 1/s, duration: 1s}\n" + (
    "checks:\n  - {name: nothing lost, ledger: lost, expect: '== 0'}\n"
)


def topology_error(tmp_path: Path, old: str, new: str) -> tuple[SpecError, Path, str]:
    text = edited(MINI_TOPOLOGY, old, new)
    topology = write(tmp_path / "targets" / "mini.yaml", text)
    return spec_error(write(tmp_path / "experiments" / "exp.yaml", LEDGER_ONLY)), topology, text


def test_a_target_name_resolves_to_the_targets_folder_beside_the_experiments(
    tmp_path: Path,
) -> None:
    topology = write(tmp_path / "targets" / "mini.yaml", MINI_TOPOLOGY)
    experiment = load_experiment(write(tmp_path / "experiments" / "exp.yaml", LEDGER_ONLY))
    assert experiment.topology_file == topology
    assert experiment.topology.layers() == [["broker"], ["api", "worker"]]


TOPOLOGY_CASES = [
    case("unknown-placeholder", '"{port}"', '"{prot}"', "components.broker.command[2]", "{prot}",
         "unknown placeholder {prot}; known: bind, data, dir, name, port"),
    case("unknown-link-placeholder", "{link:api->broker}", "{link:api->sink}",
         "components.api.env.REDIS_ADDR", "api->sink", "no link 'api->sink'; links are"),
    case("missing-load-component", "load: {component: api}", "load: {component: ap}",
         "load.component", "component: ap", "no component 'ap'; components are api, broker"),
    case("cycle", "--port,", '"{addr:api}", --port,', "components", "components:",
         "components depend on each other in a cycle"),
    case("misspelt-component-field", "replicas: 2", "replica: 2", "components.worker.replica",
         "replica: 2", "unknown field"),
    case("link-to-missing-component", "- worker->broker", "- worker->brokr", "links[1]",
        "brokr", "no component 'brokr'; components are api, broker, worker"),
    case("link-from-missing-component", "- worker->broker", "- wrker->broker",
        "links[1]", "wrker", "no component 'wrker'; components are api, broker, worker"),
    case("addr-of-missing-component", "{link:api->broker}", "{addr:nosuch}",
        "components.api.env.REDIS_ADDR", "nosuch", "no component 'nosuch'"),
    case("undeclared-named-port", '"{port}"]', '"{port:admin}"]', "components.broker.command[2]",
        "{port:admin}", "no port 'admin'; ports are (none)"),
    case("addr-of-undeclared-port", "{link:api->broker}", "{addr:broker:admin}",
        "components.api.env.REDIS_ADDR", "broker:admin",
        "broker has no port 'admin'; ports are (none)"),
    case("metrics-port-not-declared", '--port, "{port}"]', '--port, "{port}"]\n    metrics_port: x',
        "components.broker.metrics_port", "metrics_port: x", "no port 'x'"),
    case("ready-two-ways", "replicas: 2", "replicas: 2\n    ready: {http: /x, log: up}",
        "components.worker.ready", "ready:", "give one of http, command, log; not http and log"),
    case("ready-log-not-a-regex", "replicas: 2", "replicas: 2\n    ready: {log: '(up'}",
        "components.worker.ready", "ready:", "log is not a regular expression"),
    case("ready-command-placeholder", "replicas: 2",
        "replicas: 2\n    ready: {command: [test, -f, '{data}/{prot}']}",
        "components.worker.ready.command[2]", "ready:", "unknown placeholder {prot}"),
    case("body-without-the-id", "load: {component: api}",
        "load: {component: api, body: '{\"job\": 1}'}", "load.body", "body:",
        "the body must carry the message id as {id}"),
    case("ledger-source-of-unknown-kind", "load: {component: api}",
        "load: {component: api}\nledger: {source: mongo, url: x}", "ledger", "source: mongo",
        "source must be one of redis, sqlite, postgres, file, http"),
    case("ledger-placeholder-of-a-component", "load: {component: api}",
        'load: {component: api}\nledger: {source: file, path: "{data}/done.txt"}', "ledger.path",
        "{data}", "unknown placeholder {data} in a ledger source; known: dir, run, addr:NAME"),
    case("ledger-addr-of-missing-component", "load: {component: api}",
        'load: {component: api}\nledger: {source: redis, url: "redis://{addr:cache}/0", key: k}',
        "ledger.url", "{addr:cache}", "no component 'cache'"),
    case("place-placeholder-of-a-component", "load: {component: api}",
        'load: {component: api}\nplaces:\n  delayed: {source: file, path: "{data}/x"}',
        "places.delayed.path", "{data}", "unknown placeholder {data} in a ledger source"),
    case("place-of-unknown-role", "load: {component: api}",
        'load: {component: api}\nplaces:\n  lost: {source: file, path: "{run}/x"}',
        "places.lost", "lost:", "Input should be 'dead_lettered', 'delayed' or 'pending'"),
    case("place-without-its-key", "load: {component: api}",
        'load: {component: api}\nplaces:\n  pending: {source: redis, url: "redis://x/0"}',
        "places.pending.key", "source: redis", "required field is missing"),
    case("effects-without-its-key", "load: {component: api}",
        'load: {component: api}\noutput:\n  effects: {source: redis, url: "redis://x/0"}',
        "output.effects.key", "source: redis", "required field is missing"),
    case("effects-placeholder-of-a-component", "load: {component: api}",
        'load: {component: api}\noutput: {effects: {source: file, path: "{data}/x"}}',
        "output.effects.path", "{data}", "unknown placeholder {data} in a ledger source"),
    case("positions-of-an-unknown-source", "load: {component: api}",
        'load: {component: api}\noutput:\n  positions:\n    committed: {source: zookeeper}\n'
        '    processed: {source: file, path: "{run}/x"}',
        "output.positions.committed", "source: zookeeper", "'kafka', 'redis'"),
    case("positions-of-a-group-without-its-topic", "load: {component: api}",
        'load: {component: api}\noutput:\n  positions:\n'
        '    committed: {source: kafka, url: "{addr:api}", group: g}\n'
        '    processed: {source: file, path: "{run}/x"}',
        "output.positions.committed.kafka.topic", "source: kafka", "required field is missing"),
    case("positions-placeholder-of-a-component", "load: {component: api}",
        'load: {component: api}\noutput:\n  positions:\n'
        '    committed: {source: kafka, url: "{addr:cache}", topic: t, group: g}\n'
        '    processed: {source: file, path: "{run}/x"}',
        "output.positions.committed.url", "{addr:cache}", "no component 'cache'"),
    case("unknown-promise", "load: {component: api}",
        "load: {component: api}\noutput: {promise: at-most-once}", "output.promise",
        "at-most-once", "Input should be 'at-least-once' or 'exactly-once'"),
    case("ledger-without-its-key", "load: {component: api}",
        'load: {component: api}\nledger: {source: redis, url: "redis://{addr:broker}/0"}',
        "ledger.key", "source: redis", "required field is missing"),
    case("external-and-started", '--port, "{port}"]', '--port, "{port}"]\n    external: db:6379',
        "components.broker", "broker:",
        "an external component is not started by the harness: command cannot apply to it"),
    case("neither-started-nor-external", 'command: [redis-server, --port, "{port}"]',
        "description: a broker", "components.broker", "broker:",
        "give its command (or image), or external: host:port if it already runs"),
    case("external-without-a-port", 'command: [redis-server, --port, "{port}"]',
        "external: db.staging", "components.broker.external", "db.staging",
        "String should match pattern"),
    case("component-name-that-is-a-path", "  api:\n", "  ../../x:\n", "components.../../x",
        "../../x:", "'../../x' is not a name: a letter, then letters, digits, '_' or '-'"),
    case("component-named-like-the-harness", "  api:\n", "  prometheus:\n",
        "components.prometheus", "prometheus:", "'prometheus' is the harness's own"),
    case("component-named-like-a-load-worker", "  api:\n", "  load-worker-2:\n",
        "components.load-worker-2", "load-worker-2:", "'load-worker-2' is the harness's own"),
    case("a-replica-named-as-a-component", "  api:\n", "  worker-1:\n", "components.worker",
        "worker:", "'worker-1' names both component 'worker-1' and a replica of 'worker'"),
    case("own-fault-named-as-a-built-in", "load: {component: api}",
        "load: {component: api}\nfaults:\n  kill: {component: broker, apply: [a], heal: [b]}",
        "faults.kill", "kill:", "'kill' is a built-in fault: name the target's otherwise"),
    case("own-fault-on-no-component", "load: {component: api}",
        "load: {component: api}\nfaults:\n  hush: {component: brokr, apply: [a], heal: [b]}",
        "faults.hush.component", "hush:", "no component 'brokr'; components are api, broker"),
    case("own-fault-with-an-unknown-var", "load: {component: api}",
        "load: {component: api}\nfaults:\n  hush:\n    component: broker\n"
        "    apply: [pause, '{var:mode}']\n    heal: [b]",
        "faults.hush.apply[1]", "apply: [pause", "no var 'mode'; vars are (none)"),
    case("own-fault-with-a-component-placeholder", "load: {component: api}",
        "load: {component: api}\nfaults:\n  hush:\n    component: broker\n"
        "    apply: [pause, '{data}']\n    heal: [b]",
        "faults.hush.apply[1]", "apply: [pause", "unknown placeholder {data}; known: dir, host"),
    case("own-fault-without-a-heal", "load: {component: api}",
        "load: {component: api}\nfaults:\n  hush: {component: broker, apply: [a], heal: []}",
        "faults.hush.heal", "hush:", "List should have at least 1 item"),
]  # fmt: skip


def test_an_external_component_cannot_take_a_process_fault(tmp_path: Path) -> None:
    text = edited(MINI_TOPOLOGY, 'command: [redis-server, --port, "{port}"]', "external: db:6379")
    write(tmp_path / "targets" / "mini.yaml", text)
    killing = LEDGER_ONLY.replace(
        "checks:", "timeline:\n  - {at: 0s, for: 1s, fault: kill, component: broker}\nchecks:"
    )
    experiment = write(tmp_path / "experiments" / "exp.yaml", killing)
    error = spec_error(experiment)
    assert (error.file, error.line, error.field) == (str(experiment), 5, "timeline[0].component")
    assert "broker is external: the harness cannot kill what it did not start" in error.message
    plain = load_experiment(write(tmp_path / "experiments" / "plain.yaml", LEDGER_ONLY))
    assert plain.topology.components["broker"].external_address == ("db", 6379)


@pytest.mark.parametrize(("old", "new", "field", "fragment", "message"), TOPOLOGY_CASES)
def test_a_broken_topology_names_its_own_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, fragment: str, message: str
) -> None:
    error, topology, text = topology_error(tmp_path, old, new)
    line = line_of(text, fragment)
    assert (error.file, error.line, error.field) == (str(topology), line, field)
    assert message in error.message


def test_an_error_in_the_file_is_not_blamed_on_an_unrelated_set(tmp_path: Path) -> None:
    text = edited(MINI_TOPOLOGY, "--port,", '"{addr:api}", --port,')
    topology = write(tmp_path / "targets" / "mini.yaml", text)
    experiment = write(tmp_path / "experiments" / "exp.yaml", LEDGER_ONLY)
    error = spec_error(experiment, ("worker.replicas=1",))
    assert (error.file, error.line, error.field) == (str(topology), 2, "components")


# ------------------------------------------------------------ overrides


@pytest.fixture
def experiment_file(tmp_path: Path) -> Path:
    return write(tmp_path / "exp.yaml", EXPERIMENT)


def test_set_changes_the_topology_and_the_experiment(experiment_file: Path) -> None:
    assert load_experiment(experiment_file).topology.components["worker"].replicas == 2
    sets = ["worker.replicas=1", "load.rate=50/s", "worker.env.PROCESS_MS=50"]
    experiment = load_experiment(experiment_file, sets)
    worker = experiment.topology.components["worker"]
    assert (worker.replicas, worker.env["PROCESS_MS"], worker.env["STREAM"]) == (1, "50", "jobs")
    assert experiment.spec.load.rate == 50.0


def test_set_of_an_unknown_path_names_set(experiment_file: Path) -> None:
    error = spec_error(experiment_file, ("nosuch.x=1",))
    assert (error.file, error.line, error.field) == ("--set", None, "nosuch.x=1")
    assert str(error).startswith("--set: nosuch.x=1: no experiment field or component 'nosuch'")
    assert error.exit_code == 3


def test_set_without_equals_is_refused(experiment_file: Path) -> None:
    error = spec_error(experiment_file, ("worker.replicas",))
    assert error.file == "--set"
    assert "expected path=value" in error.message


def test_a_bad_value_from_set_is_blamed_on_set(experiment_file: Path) -> None:
    error = spec_error(experiment_file, ("worker.replicas=abc",))
    assert (error.file, error.line, error.field) == ("--set", None, "components.worker.replicas")
    assert error.message.endswith("(from --set worker.replicas=abc)")
    assert str(error).startswith("--set: components.worker.replicas: ")


def test_overrides_merge_into_the_topology_component(tmp_path: Path) -> None:
    text = edited(
        EXPERIMENT,
        "checks:\n",
        "overrides:\n  worker: {replicas: 3, env: {PROCESS_MS: 20}}\nchecks:\n",
    )
    experiment = load_experiment(write(tmp_path / "exp.yaml", text))
    worker = experiment.topology.components["worker"]
    assert worker.replicas == 3
    assert worker.env["PROCESS_MS"] == "20"
    assert worker.env["STREAM"] == "jobs"
    assert worker.command == ["{python}", "{dir}/redis_streams/worker.py"]


def test_set_wins_over_overrides(tmp_path: Path) -> None:
    text = edited(EXPERIMENT, "checks:\n", "overrides:\n  worker: {replicas: 3}\nchecks:\n")
    experiment = load_experiment(write(tmp_path / "exp.yaml", text), ["worker.replicas=1"])
    assert experiment.topology.components["worker"].replicas == 1


def test_set_takes_a_yaml_boolean_word_as_text(experiment_file: Path) -> None:
    experiment = load_experiment(experiment_file, ["broker.vars.appendonly=no"])
    assert experiment.topology.components["broker"].vars["appendonly"] == "no"


def test_a_boolean_in_an_environment_is_refused_with_the_fix(tmp_path: Path) -> None:
    text = edited(EXPERIMENT, "checks:\n", "overrides:\n  worker: {env: {DEBUG: true}}\nchecks:\n")
    path = write(tmp_path / "exp.yaml", text)
    error = spec_error(path)
    assert (error.file, error.line) == (str(path), line_of(text, "DEBUG"))
    assert error.field == "overrides.worker.env.DEBUG"
    assert "quote the text you mean" in error.message


def test_queue_stands_for_the_targets_queue(tmp_path: Path) -> None:
    write(
        tmp_path / "targets" / "mini.yaml",
        MINI_TOPOLOGY.replace("name: mini", "name: mini\nqueue: events"),
    )
    experiment = write(
        tmp_path / "experiments" / "exp.yaml",
        "name: q\ntarget: mini\nload: {rate: 1/s, duration: 1s}\n"
        "checks:\n  - {name: empty, query: 'sum(harness_queue_depth{queue=\"$queue\"})', "
        "at: end, expect: '== 0'}\n",
    )
    (check,) = load_experiment(experiment).spec.checks
    assert check.query == 'sum(harness_queue_depth{queue="events"})'


def test_a_target_in_a_subfolder_of_targets_is_named_with_its_folder(tmp_path: Path) -> None:
    topology = write(tmp_path / "targets" / "examples" / "mini.yaml", MINI_TOPOLOGY)
    experiment = write(
        tmp_path / "experiments" / "exp.yaml",
        LEDGER_ONLY.replace("target: mini", "target: examples/mini"),
    )
    assert load_experiment(experiment).topology_file == topology


def test_a_cut_needs_the_docker_deployer() -> None:
    path = ROOT / "experiments" / "containers" / "workers-cut-off.yaml"
    experiment = load_experiment(path)
    assert (experiment.topology.deployer, experiment.faults[0].kind) == ("docker", "cut")
    error = spec_error(path, ("deployer=local",))
    assert error.field == "timeline[0].fault"
    assert "a cut fault needs the docker deployer (--deployer docker)" in error.message
    assert load_experiment(ROOT / "experiments" / "slow-consumer.yaml").topology.deployer == "local"
    docker = load_experiment(ROOT / "experiments" / "slow-consumer.yaml", ("deployer=docker",))
    assert docker.topology.deployer == "docker"


OWN_FAULT = """
faults:
  hush:
    description: the broker stops answering
    component: broker
    apply: ["{python}", pause.py, "{host}:{port}", "{var:mode}"]
    heal: ["{python}", unpause.py, "{host}:{port}"]
    vars: {mode: WRITE}
    timeout: 5s
"""


def own_fault_experiment(tmp_path: Path, entry: str) -> Path:
    write(tmp_path / "targets" / "mini.yaml", MINI_TOPOLOGY + OWN_FAULT)
    timeline = LEDGER_ONLY.replace("checks:", f"timeline:\n  - {entry}\nchecks:")
    return write(tmp_path / "experiments" / "exp.yaml", timeline)


def test_a_targets_own_fault_is_used_by_its_name_on_its_component(tmp_path: Path) -> None:
    path = own_fault_experiment(tmp_path, "{name: hushed, at: 0s, for: 1s, fault: hush, mode: ALL}")
    (entry,) = load_experiment(path).faults
    assert (entry.label, entry.kind, entry.targets) == ("hushed", "hush", ("broker",))
    assert entry.fault.model_dump() == {"name": "hush", "vars": {"mode": "ALL"}}
    assert entry.fault.timeout_s == 5.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ("{at: 0s, for: 1s, fault: hush, component: api}", "timeline[0]",
         "hush is mini's own fault on broker: give no other"),
        ("{at: 0s, for: 1s, fault: hush, link: api->broker}", "timeline[0]",
         "hush is mini's own fault on broker: give no other"),
        ("{at: 0s, for: 1s, fault: hush, mood: ALL}", "timeline[0].mood",
         "unknown field; no var 'mood'; vars are mode"),
        ("{at: 0s, for: 1s, fault: hush, mode: [A]}", "timeline[0].mode",
         "a setting is text or a number"),
        ("{at: 0s, for: 1s, fault: hsh}", "timeline[0].fault", "faults are bandwidth"),
    ],
)  # fmt: skip
def test_a_targets_own_fault_refuses_what_it_does_not_declare(
    tmp_path: Path, entry: str, field: str, message: str
) -> None:
    error = spec_error(own_fault_experiment(tmp_path, entry))
    assert (error.line, error.field) == (5, field)
    assert message in error.message
    if "faults are" in message:
        assert "hush" in error.message
