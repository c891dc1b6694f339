"""The CLI as a user meets it: a subprocess, its exit code and its one-line messages."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT
from tests.integration.redis_streams_stack import free_port

TARGET = ROOT / "targets" / "redis-streams.yaml"


def test_validate_accepts_the_shipped_experiment(harness_cli) -> None:
    result = harness_cli("validate", "experiments/slow-consumer.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok experiments/slow-consumer.yaml: slow-consumer on redis-streams" in result.stdout


def test_validate_with_targets_loads_the_experiment_on_each(harness_cli) -> None:
    result = harness_cli(
        "validate", "experiments/crashed-workers.yaml", "--target", "redis-streams,rabbitmq"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("crashed-workers on redis-streams") == 1
    assert result.stdout.count("crashed-workers on rabbitmq") == 1


def test_validate_with_a_matrix_loads_every_combination(harness_cli) -> None:
    result = harness_cli(
        "validate", "experiments/crashed-workers.yaml", "--matrix", "worker.replicas=2,3",
        "--target", "redis-streams,rabbitmq",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert "crashed-workers on rabbitmq [worker.replicas=3, target=rabbitmq]" in lines[3]


def test_a_matrix_value_the_experiment_refuses_is_bad_input_at_its_line(
    harness_cli, tmp_path: Path
) -> None:
    experiment = tmp_path / "grid.yaml"
    text = (ROOT / "experiments" / "crashed-workers.yaml").read_text()
    experiment.write_text(f"{text}\nmatrix:\n  worker.replicas: [2, lots]\n")
    line = text.count("\n") + 3
    for command in (("validate",), ("run", "--runs-dir", str(tmp_path / "runs"))):
        result = harness_cli(command[0], str(experiment), *command[1:])
        assert result.returncode == 3, result.stderr
        assert f"{experiment}:{line}: matrix.worker.replicas[1]: " in result.stderr
        assert "(it sets components.worker.replicas)" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_control_without_faults_is_bad_input_and_starts_nothing(
    harness_cli, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    result = harness_cli(
        "run", "experiments/backpressure.yaml", "--control", "--runs-dir", str(runs)
    )
    assert result.returncode == 3, result.stderr
    assert "backpressure has no faults to skip: --control needs a timeline" in result.stderr
    assert not runs.exists()


def test_an_unknown_target_is_bad_input_and_starts_nothing(harness_cli, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = harness_cli(
        "run", "experiments/slow-consumer.yaml", "--target", "rabbitmq,kafak",
        "--runs-dir", str(runs),
    )  # fmt: skip
    assert result.returncode == 3
    assert "no target 'kafak'" in result.stderr and "(from --set target=kafak)" in result.stderr
    assert not runs.exists()


def test_malformed_yaml_is_bad_input_with_its_line(harness_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntarget: redis-streams\nload: {rate: 10/s\n")
    result = harness_cli("validate", str(bad))
    assert result.returncode == 3
    assert f"{bad}:4: not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_markup_in_a_file_name_and_its_fields_is_printed_as_written(
    harness_cli, tmp_path: Path
) -> None:
    bad = tmp_path / "bad[bold].yaml"
    bad.write_text("name: x\ntarget: redis-streams\nload: {rate: '[/red]'}\n")
    result = harness_cli("validate", str(bad))
    assert result.returncode == 3, result.stderr
    assert "bad[bold].yaml:3" in result.stderr and "[/red]" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_field_is_named_with_its_line(harness_cli, tmp_path: Path) -> None:
    text = (ROOT / "experiments" / "slow-consumer.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("drain: 30s", "drian: 30s"))
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "drian" in t)
    result = harness_cli("validate", str(bad))
    assert result.returncode == 3
    assert f"{bad}:{line}: drian: unknown field" in result.stderr


def test_a_bad_set_is_bad_input_and_starts_nothing(harness_cli, tmp_path: Path) -> None:
    result = harness_cli(
        "run", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path / "runs"),
        "--set", "wroker.replicas=1",
    )  # fmt: skip
    assert result.returncode == 3
    assert "--set: wroker.replicas=1: no experiment field or component 'wroker'" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--remote-load-workers", "2"], "--load-master HOST:PORT and --remote-load-workers N go"),
        (["--load-master", "10.0.0.5:5557"], "--load-master HOST:PORT and --remote-load-workers"),
        (["--load-master", "10.0.0.5", "--remote-load-workers", "1"], "expected HOST:PORT"),
        (["--load-master", "h:99999", "--remote-load-workers", "1"], "expected HOST:PORT"),
        (["--load-master", "h:5557", "--remote-load-workers", "0"], "at least one worker"),
    ],
)
def test_bad_remote_load_workers_are_bad_input_and_start_nothing(
    harness_cli, tmp_path: Path, options: list[str], message: str
) -> None:
    runs = tmp_path / "runs"
    result = harness_cli("run", "experiments/slow-consumer.yaml", "--runs-dir", str(runs), *options)
    assert result.returncode == 3, result.stderr
    assert "command line: " in result.stderr and message in result.stderr
    assert not runs.exists()


@pytest.mark.parametrize("times", ["0", "-2", "two", "1.5"])
def test_a_bad_repeat_is_bad_input_and_starts_nothing(
    harness_cli, tmp_path: Path, times: str
) -> None:
    runs = tmp_path / "runs"
    result = harness_cli(
        "run", "experiments/slow-consumer.yaml", "--runs-dir", str(runs), f"--repeat={times}"
    )
    assert result.returncode == 3, result.stderr
    assert f"command line: --repeat: expected a whole number of runs, 1 or more; got '{times}'" in (
        result.stderr
    )
    assert not runs.exists()


def test_a_load_worker_needs_a_master_address(harness_cli) -> None:
    result = harness_cli("load-worker", "--master", "nowhere")
    assert result.returncode == 3
    assert "command line: --master: expected HOST:PORT" in result.stderr


def test_doctor_lists_every_component(harness_cli) -> None:
    result = harness_cli("doctor")
    for name in ("redis-server", "prometheus", "toxiproxy-server", "locust"):
        assert name in result.stdout
    assert result.returncode == 0, result.stdout


def test_report_of_a_folder_without_a_journal_is_bad_input(harness_cli, tmp_path: Path) -> None:
    result = harness_cli("report", str(tmp_path))
    assert result.returncode == 3
    assert "no journal here" in result.stderr


def test_help_names_every_command(harness_cli) -> None:
    result = harness_cli("--help")
    assert result.returncode == 0
    for command in (
        "run",
        "validate",
        "report",
        "schema",
        "down",
        "load-worker",
        "doctor",
        "setup",
        "dashboards",
        "up",
        "history",
    ):
        assert command in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ("run",),
        ("run", "x.yaml", "--seed", "abc"),
        ("run", "x.yaml", "--deployer", "bogus"),
        ("schema", "bogus"),
        ("bogus",),
        ("validate", "experiments/slow-consumer.yaml", "--target", ""),
    ],
    ids=["no file", "seed", "deployer", "schema kind", "command", "empty target"],
)
def test_a_wrong_command_line_is_bad_input_with_one_message(
    harness_cli, argv: tuple[str, ...]
) -> None:
    result = harness_cli(*argv)
    assert result.returncode == 3  # as a wrong file; 2 is inconclusive
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_pushing_dashboards_without_credentials_says_which_variables_to_set(
    harness_cli,
) -> None:
    env = {"GRAFANA_TOKEN": "", "GRAFANA_USER": "", "GRAFANA_PASSWORD": ""}
    result = harness_cli("dashboards", "push", "--grafana-url", "http://127.0.0.1:1", env=env)
    assert result.returncode == 2
    assert "GRAFANA_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_grafana_is_one_clear_error(harness_cli) -> None:
    secret = "do-not-print-me"
    result = harness_cli(
        "dashboards", "push", "--grafana-url", f"http://127.0.0.1:{free_port()}",
        env={"GRAFANA_TOKEN": secret},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: Grafana:") and "Traceback" not in result.stderr
    assert secret not in result.stdout + result.stderr


def test_dashboards_build_writes_what_the_repository_ships(harness_cli, tmp_path: Path) -> None:
    result = harness_cli("dashboards", "build", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    shipped = sorted(p.name for p in (ROOT / "dashboards").glob("*.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == shipped
    for name in shipped:
        assert (tmp_path / name).read_text() == (ROOT / "dashboards" / name).read_text()


def test_dashboards_check_passes_the_shipped_and_names_each_problem(
    harness_cli, tmp_path: Path
) -> None:
    shipped = harness_cli("dashboards", "check")
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout.count("ok dashboards/") == len(list((ROOT / "dashboards").glob("*.json")))
    text = (ROOT / "dashboards" / "nats.json").read_text()
    spoilt = tmp_path / "nats.json"
    spoilt.write_text(text.replace('"unit": "s"', '"unti": "s"', 1))
    result = harness_cli("dashboards", "check", str(spoilt), str(tmp_path / "missing.json"))
    assert result.returncode == 3
    line = next(n for n, t in enumerate(spoilt.read_text().splitlines(), 1) if '"unti"' in t)
    assert f"invalid: {spoilt}:{line}: panels[" in result.stderr
    assert ".fieldConfig.defaults.unti: unknown field of FieldConfig" in result.stderr
    assert f"invalid: {tmp_path / 'missing.json'}: no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_history_writes_the_run_folders_ledger_and_refuses_a_folder_without_one(
    harness_cli, tmp_path: Path
) -> None:
    ledger = tmp_path / "run" / "ledger"
    ledger.mkdir(parents=True)
    (ledger / "sent.jsonl").write_text(
        '{"id": "a", "type": "invoke", "t": 1.0}\n{"id": "a", "type": "ok", "t": 1.5}\n'
    )
    (ledger / "processed.jsonl").write_text('{"id": "a", "t": 2.0}\n')
    result = harness_cli("history", str(tmp_path / "run"), "--format", "edn")
    assert result.returncode == 0, result.stderr
    assert "4 operations" in result.stdout
    lines = (tmp_path / "run" / "history.edn").read_text().splitlines()
    assert [line.split(", ")[1:3] for line in lines] == [
        [":type :invoke", ":f :enqueue"], [":type :ok", ":f :enqueue"],
        [":type :invoke", ":f :dequeue"], [":type :ok", ":f :dequeue"],
    ]  # fmt: skip
    (ledger / "processed.jsonl").write_text('{"id": ["a"]}\n')
    unreadable = harness_cli("history", str(tmp_path / "run"))
    assert unreadable.returncode == 3
    assert 'processed.jsonl line 1: a record without a message "id"' in unreadable.stderr
    empty = harness_cli("history", str(tmp_path))
    assert empty.returncode == 3
    assert "no ledger folder here" in empty.stderr
    assert "Traceback" not in empty.stderr + unreadable.stderr


def test_validate_takes_a_folder_and_reports_every_file(harness_cli, tmp_path: Path) -> None:
    good = (ROOT / "experiments" / "slow-consumer.yaml").read_text()
    (tmp_path / "a.yaml").write_text(good.replace("target: redis-streams", f"target: {TARGET}"))
    (tmp_path / "b.yml").write_text("name: b\n")
    (tmp_path / "notes.txt").write_text("not an experiment")
    result = harness_cli("validate", str(tmp_path))
    assert result.returncode == 3
    assert f"ok {tmp_path / 'a.yaml'}: slow-consumer" in result.stdout
    assert f"invalid: {tmp_path / 'b.yml'}" in result.stderr
    assert "notes.txt" not in result.stdout + result.stderr


def test_a_folder_without_experiments_is_bad_input(harness_cli, tmp_path: Path) -> None:
    for command in ("validate", "run"):
        result = harness_cli(command, str(tmp_path), "--set", "load.duration=1s")
        assert result.returncode == 3
        assert f"{tmp_path}: no experiment files (*.yaml) in this folder" in result.stderr


def test_run_checks_every_file_before_running_any(harness_cli, tmp_path: Path) -> None:
    bad = tmp_path / "z-bad.yaml"
    bad.write_text("name: z\n")
    runs = tmp_path / "runs"
    result = harness_cli("run", "experiments/slow-consumer.yaml", str(bad), "--runs-dir", str(runs))
    assert result.returncode == 3
    assert str(bad) in result.stderr
    assert not runs.exists()


@pytest.mark.parametrize(
    ("kind", "folder"), [("experiment", "experiments"), ("topology", "targets")]
)
def test_the_schema_accepts_every_shipped_file(harness_cli, kind: str, folder: str) -> None:
    result = harness_cli("schema", kind)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    files = sorted((ROOT / folder).glob("**/*.yaml"))
    assert files
    for path in files:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_the_schema_refuses_what_the_loader_refuses(harness_cli) -> None:
    schema = json.loads(harness_cli("schema").stdout)
    experiment = yaml.safe_load((ROOT / "experiments" / "slow-consumer.yaml").read_text())
    experiment["drian"] = "30s"
    with pytest.raises(jsonschema.ValidationError, match="drian"):
        jsonschema.validate(experiment, schema)


def test_init_writes_a_target_and_experiment_that_validate(harness_cli, tmp_path: Path) -> None:
    result = harness_cli("init", "shop", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    target = tmp_path / "targets" / "shop.yaml"
    experiment = tmp_path / "experiments" / "shop-crashed-workers.yaml"
    assert "TODO" in target.read_text() and "target: shop" in experiment.read_text()
    checked = harness_cli("validate", str(experiment))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    target.write_text(target.read_text() + "# mine\n")
    again = harness_cli("init", "shop", "--dir", str(tmp_path))
    assert again.returncode == 3
    assert f"already there: {target}, {experiment}; --force overwrites" in again.stderr
    assert target.read_text().endswith("# mine\n")  # nothing was overwritten
    forced = harness_cli("init", "shop", "--dir", str(tmp_path), "--force")
    assert forced.returncode == 0 and not target.read_text().endswith("# mine\n")


def test_init_refuses_a_name_that_is_not_a_target_name(harness_cli, tmp_path: Path) -> None:
    result = harness_cli("init", "my shop", "--dir", str(tmp_path))
    assert result.returncode == 3
    assert "'my shop' is not a target name" in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("journal", "message"),
    [
        ("[1, 2]", "a journal is a JSON object, not a list"),
        ('{"verdict": "weird"}', "verdict: 'weird' is not one of held"),
        ('{"verdict": "held"}', "checks: a journal has a list of checks"),
        ('{"verdict": "held", "checks": [{"name": "x"}]}', "checks[0].verdict: missing"),
    ],
)
def test_report_on_a_journal_it_did_not_write_is_bad_input(
    harness_cli, tmp_path: Path, journal: str, message: str
) -> None:
    (tmp_path / "journal.json").write_text(journal)
    result = harness_cli("report", str(tmp_path))
    assert result.returncode == 3 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv", [("init", "foo", "--dir", "{file}"), ("dashboards", "build", "--out", "{file}")]
)
def test_a_folder_option_given_a_file_is_bad_input(
    harness_cli, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    file = tmp_path / "a-file"
    file.write_text("")
    result = harness_cli(*(a.format(file=file) for a in argv))
    assert result.returncode == 3 and "is a file, not a folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_name_too_long_is_bad_input(harness_cli, tmp_path: Path) -> None:
    result = harness_cli("validate", str(tmp_path / ("a" * 300 + ".yaml")))
    assert result.returncode == 3 and "File name too long" in result.stderr
    assert "Traceback" not in result.stderr
