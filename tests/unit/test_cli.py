"""The CLI as a user meets it: a subprocess, its exit code and its one-line messages."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT


def test_validate_accepts_the_shipped_experiment(harness_cli) -> None:
    result = harness_cli("validate", "experiments/slow-consumer.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok experiments/slow-consumer.yaml: slow-consumer on redis-streams" in result.stdout


def test_malformed_yaml_is_bad_input_with_its_line(harness_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntarget: redis-streams\nload: {rate: 10/s\n")
    result = harness_cli("validate", str(bad))
    assert result.returncode == 3
    assert f"{bad}:4: not valid YAML" in result.stderr
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
    for command in ("run", "validate", "report", "doctor", "setup"):
        assert command in result.stdout
