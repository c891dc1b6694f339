"""The docker deployer on a real engine: the reference target as containers built here (no
registry), with the same links, faults, checks and run folder as the local deployer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker
import pytest

from harness.deploy.containers import LABEL_RUN
from tests.conftest import ROOT, harness_argv
from tests.integration.catalogue import TWO_QUICK_KILLS, as_sets
from tests.integration.test_catalogue import assert_exact_ledger, run, verdicts
from tests.integration.test_run import SHORT, _wait_for_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCKER = ("--deployer", "docker")
# A single early kill may find the workers holding nothing to claim: two, as shipped.
QUICK_KILLS = as_sets(TWO_QUICK_KILLS)


def of_run(run_id: str) -> list[str]:
    """Containers and networks the engine still has for a run."""
    client = docker.from_env()
    label = {"label": f"{LABEL_RUN}={run_id}"}
    return [f"container {c.name}" for c in client.containers.list(all=True, filters=label)] + [
        f"network {n.name}" for n in client.networks.list(filters=label)
    ]


def test_slow_consumer_holds_on_containers_and_leaves_none(harness_cli, tmp_path: Path) -> None:
    result, journal = run(harness_cli, "slow-consumer", tmp_path, *DOCKER, *SHORT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (journal["verdict"], journal["deployer"]) == ("held", "docker"), journal["checks"]
    assert journal["ledger"]["acknowledged"] > 1000
    assert_exact_ledger(journal["ledger"])
    # Each container's output is in the run folder, as a local process's would be.
    assert (
        "Ready to accept connections" in (Path(journal["run_dir"]) / "logs/broker.log").read_text()
    )
    # The journal lists each container as it lists a process: where, what, how soon, how much.
    broker = journal["components"]["broker"]
    assert broker["container"] == f"{journal['run_id']}-broker"
    assert broker["image"].startswith("harness/redis:") and broker["host"].startswith("10.213.")
    assert broker["ready_s"] > 0 and broker["cpu_s"] > 0
    listed = {each["component"] for each in journal["components"].values()}
    assert {"broker", "api", "worker", "sink", "prometheus", "load"} <= listed
    assert of_run(journal["run_id"]) == []


def test_crashed_workers_hold_on_containers(harness_cli, tmp_path: Path) -> None:
    """SIGKILL to worker containers mid-job; they start again with the same address."""
    result, journal = run(harness_cli, "crashed-workers", tmp_path, *DOCKER, *QUICK_KILLS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal["verdict"] == "held", verdicts(journal)
    kills = [e for e in journal["timeline"] if e["kind"] == "fault.apply"]
    assert kills and all(e["outcome"] == "ok" for e in kills)
    assert journal["ledger"]["lost"] == 0
    assert of_run(journal["run_id"]) == []


def test_workers_cut_off_by_iptables_catch_up_after_heal(harness_cli, tmp_path: Path) -> None:
    """A real partition in the workers' network namespaces: the backlog builds while they are
    cut off (the cut works), and they recover on their own after it heals."""
    result = harness_cli(
        "run", "experiments/containers/workers-cut-off.yaml", "--runs-dir", str(tmp_path),
        timeout=240,
    )  # fmt: skip
    (run_dir,) = tmp_path.iterdir()
    journal = json.loads((run_dir / "journal.json").read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal["verdict"] == "held", verdicts(journal)
    built = next(c for c in journal["checks"] if c["name"].startswith("the backlog builds"))
    assert float(built["observed"].split()[0]) > 300  # "612 at +14s": the first sample over
    assert journal["ledger"]["lost"] == 0
    assert of_run(journal["run_id"]) == []


def test_a_sigkilled_harness_leaves_containers_that_down_removes(
    harness_cli, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        harness_argv("run", "experiments/paused-consumer.yaml", "--runs-dir", str(tmp_path),
                     *DOCKER, "--set", "timeline.0.at=1s"),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _wait_for_event(tmp_path, "fault.apply", timeout_s=120), "the fault never came"
    finally:
        proc.kill()  # SIGKILL: no teardown can run
        proc.wait()
    (run_dir,) = tmp_path.iterdir()
    left = of_run(run_dir.name)
    assert any(n.startswith("network ") for n in left) and len(left) > 5, left
    result = harness_cli("down")
    assert result.returncode == 0, result.stderr
    assert f"removed {len(left)} containers and networks" in result.stdout, result.stdout
    assert of_run(run_dir.name) == []


def test_prometheus_runs_as_a_container_when_asked(harness_cli, tmp_path: Path) -> None:
    """--observers docker: Prometheus on the run's network scrapes the containers and the load
    (on the host, at the network's gateway); the checks read it as they read a local one."""
    result, journal = run(
        harness_cli, "crashed-workers", tmp_path, *DOCKER, "--observers", "docker", *QUICK_KILLS
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (journal["verdict"], journal["observers"]) == ("held", "docker"), journal["checks"]
    components = journal["components"]
    for service, kind in (
        ("prometheus", "harness/prometheus:"),
        ("toxiproxy", "harness/toxiproxy:"),
    ):
        assert components[service]["container"] == f"{journal['run_id']}-{service}"
        assert components[service]["image"].startswith(kind)
    assert components["prometheus"]["host"].startswith("10.213.")
    # Its TSDB is in the run folder, written from inside the container.
    assert any((Path(journal["run_dir"]) / "prometheus").glob("*"))
    assert_exact_ledger(journal["ledger"])
    assert of_run(journal["run_id"]) == []


def test_observers_in_containers_need_the_docker_deployer(harness_cli) -> None:
    result = harness_cli(
        "validate", str(ROOT / "experiments/slow-consumer.yaml"), "--observers", "docker"
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "observers" in result.stderr and "--deployer docker" in result.stderr
