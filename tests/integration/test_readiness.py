"""A component without a port of its own (a Celery worker, a cron-like consumer) says it is ready
by a command or a line in its log; real processes, deployed from a topology."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.deploy import base, local
from harness.deploy.ports import PortAllocator
from harness.errors import ComponentFailed
from harness.topology import TopologySpec

pytestmark = [pytest.mark.integration]

SLOW_START_S = 0.6


def deploy(tmp_path: Path, ready: dict[str, object], script: str) -> local.LocalDeployment:
    topology = TopologySpec.model_validate(
        {
            "name": "quiet",
            "components": {
                "worker": {
                    "command": ["sh", "-c", script],
                    "workdir": "{data}",
                    "ready": {**ready, "timeout": "5s"},
                }
            },
            "load": {"component": "worker"},
        }
    )
    where = base.layout(topology, PortAllocator())
    return local.LocalDeployment(base.plan(topology, tmp_path, tmp_path / "run", where))


@pytest.fixture
def deployments() -> Iterator[list[local.LocalDeployment]]:
    made: list[local.LocalDeployment] = []
    yield made
    for deployment in made:
        deployment.down()


def test_a_command_that_exits_0_says_ready_and_runs_in_the_workdir(
    tmp_path: Path, deployments: list[local.LocalDeployment]
) -> None:
    script = f"sleep {SLOW_START_S}; touch up; exec sleep 30"
    deployment = deploy(tmp_path, {"command": ["test", "-f", "{data}/up"]}, script)
    deployments.append(deployment)
    deployment.up()
    assert (tmp_path / "run" / "data" / "worker" / "up").is_file()  # its cwd was {data}
    ready_s = deployment.processes["worker"].ready_s
    assert ready_s is not None and ready_s >= SLOW_START_S


def test_a_log_line_says_ready_and_a_restart_waits_for_a_new_one(
    tmp_path: Path, deployments: list[local.LocalDeployment]
) -> None:
    script = f"echo starting; sleep {SLOW_START_S}; echo 'worker@host ready.'; exec sleep 30"
    deployment = deploy(tmp_path, {"log": r"ready\."}, script)
    deployments.append(deployment)
    deployment.up()
    deployment.kill("worker")
    started = time.monotonic()
    deployment.start("worker")  # the old "ready." is still in the log it appends to
    assert time.monotonic() - started >= SLOW_START_S
    log = (tmp_path / "run" / "logs" / "worker.log").read_text()
    assert log.count("ready.") == 2


def test_never_ready_fails_with_the_log_tail(
    tmp_path: Path, deployments: list[local.LocalDeployment]
) -> None:
    deployment = deploy(tmp_path, {"command": ["false"]}, "echo 'no broker here'; exec sleep 30")
    deployments.append(deployment)
    with pytest.raises(ComponentFailed, match="was not ready after 5 s") as failure:
        deployment.up()
    assert "no broker here" in str(failure.value)
