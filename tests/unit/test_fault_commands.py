"""A target's own fault commands as the harness runs them: placeholders filled for the replica,
the output kept in the run's logs, a failure or a hang an error that says which command."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.deploy.base import Layout
from harness.deploy.commands import HostCommands
from harness.errors import EnvironmentProblem

WHERE = Layout(
    ports={"broker": [6380, 6381]}, links={"api->broker": 7000},
    named={"broker": [{}, {}]}, hosts={"broker": ["127.0.0.1", "127.0.0.1"]},
)  # fmt: skip


@pytest.fixture
def commands(tmp_path: Path) -> HostCommands:
    replicas = [
        SimpleNamespace(name=f"broker-{i}", host="127.0.0.1", port=6380 + i) for i in (0, 1)
    ]
    deployment = SimpleNamespace(instances=replicas)
    return HostCommands(deployment, tmp_path / "target", tmp_path / "run", WHERE)  # type: ignore[arg-type]


def test_each_placeholder_is_the_replicas_and_the_output_is_kept(
    commands: HostCommands, tmp_path: Path
) -> None:
    out = tmp_path / "args.txt"
    script = "import sys; open(sys.argv[1], 'w').write(' '.join(sys.argv[2:])); print('paused')"
    argv = [
        "{python}", "-c", script, str(out), "{host}:{port}", "{name}", "{var:mode}",
        "{addr:broker}", "{link:api->broker}", "{dir}", "{run}",
    ]  # fmt: skip
    commands.run(argv, "broker-1", {"mode": "WRITE"}, 10)
    assert out.read_text().split() == [
        "127.0.0.1:6381", "broker-1", "WRITE", "127.0.0.1:6380", "127.0.0.1:7000",
        str((tmp_path / "target").resolve()), str(tmp_path / "run"),
    ]  # fmt: skip
    log = (tmp_path / "run" / "logs" / "faults.log").read_text()
    assert f"$ {sys.executable} -c" in log and "paused\n" in log and "exit 0" in log


def test_a_failing_command_is_an_error_naming_it_with_its_output(commands: HostCommands) -> None:
    argv = ["{python}", "-c", "import sys; sys.exit('no such client')"]
    with pytest.raises(EnvironmentProblem, match=r"-c .* exited with 1: no such client"):
        commands.run(argv, "broker-0", {}, 10)


def test_a_command_that_hangs_is_stopped_at_its_timeout(commands: HostCommands) -> None:
    with pytest.raises(EnvironmentProblem, match=r"no answer within 0.5s"):
        commands.run(["{python}", "-c", "import time; time.sleep(30)"], "broker-0", {}, 0.5)


def test_a_missing_program_is_an_error_naming_it(commands: HostCommands) -> None:
    with pytest.raises(EnvironmentProblem, match="no-such-program-here"):
        commands.run(["no-such-program-here"], "broker-0", {}, 5)
