"""The container faults on a real engine: packet loss in a replica's network namespace and on a
link's proxy, a squeezed CPU or memory limit, busy loops beside a replica. Each is measured
while it is in effect (retransmissions, throttling, the cgroup's limit, the CPU it takes) and
after it heals (its rules gone, the limits back), and it is undone by every path: its heal,
a run that aborts, SIGTERM, and `harness down` after a SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from harness.state import in_effect
from tests.conftest import ROOT
from tests.integration.test_docker import of_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TARGET = ROOT / "targets" / "redis-streams.yaml"
# Two windows, one fault on each component (two on one would conflict): the network's, then
# the resources'.
FAULTS = """\
  - {name: lossy, at: 2s, for: 6s, fault: packet_loss, component: worker, loss: 50}
  - {name: lossy-link, at: 2s, for: 6s, fault: link_loss, link: api->broker, loss: 50}
  - {name: squeezed, at: 10s, for: 6s, fault: cpu_limit, component: worker, cpus: 0.01}
  - {name: capped, at: 10s, for: 6s, fault: memory_limit, component: sink, memory: 96MiB}
  - {name: stressed, at: 10s, for: 6s, fault: cpu_stress, component: notifier}
"""
LABELS = ("lossy", "lossy-link", "squeezed", "capped", "stressed")
CAP = 96 * 2**20
STRESS = "harness-stress"  # in the command line of each busy loop


def experiment(folder: Path, duration: str, extra: str = "", faults: str = FAULTS) -> Path:
    path = folder / "container-faults.yaml"
    path.write_text(
        f"name: container-faults\ntarget: {TARGET}\ndeployer: docker\n"
        f"load: {{rate: 100/s, duration: {duration}}}\ndrain: 20s\n{extra}"
        f"timeline:\n{faults}"
        "checks:\n  - {name: nothing acknowledged is lost, ledger: lost, expect: '== 0'}\n"
    )
    return path


class Run:
    """A run in progress, read through its run folder and the engine."""

    def __init__(self, runs: Path) -> None:
        self.runs = runs
        self.engine = docker.from_env()

    @property
    def folder(self) -> Path:
        (folder,) = self.runs.iterdir()
        return folder

    def events(self) -> list[dict[str, Any]]:
        path = next(self.runs.glob("*/events.jsonl"), None)
        if path is None:
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def wait(self, kind: str, labels: tuple[str, ...], timeout_s: float = 150) -> None:
        """Until every fault of ``labels`` has a ``kind`` event (fault.apply, fault.heal)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            seen = {e["value"].get("label") for e in self.events() if e["kind"] == kind}
            if set(labels) <= seen:
                failed = [e for e in self.events() if e["kind"] == kind and e["outcome"] != "ok"]
                assert not failed, failed
                return
            time.sleep(0.1)
        pytest.fail(f"no {kind} of {labels} within {timeout_s:g}s: {self.events()[-3:]}")

    def container(self, name: str) -> Container:
        container = self.engine.containers.get(f"{self.folder.name}-{name}")
        container.reload()
        return container

    def in_namespace(self, name: str, *argv: str) -> str:
        pid = str(self.container(name).attrs["State"]["Pid"])
        done = subprocess.run(["nsenter", "-t", pid, "-n", *argv], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def dropping(self, name: str) -> list[str]:
        """The rules that drop a share of the packets in the container's namespace."""
        rules = self.in_namespace(name, "iptables", "-S").splitlines()
        return [rule for rule in rules if "statistic" in rule and "DROP" in rule]

    def retransmitted(self, name: str) -> int:
        """TCP segments retransmitted so far in the container's namespace."""
        lines = [
            line.split() for line in self.in_namespace(name, "cat", "/proc/net/snmp").splitlines()
        ]
        names, values = [row for row in lines if row[0] == "Tcp:"][:2]
        return int(values[names.index("RetransSegs")])

    def cpu(self, name: str) -> dict[str, Any]:
        stats: dict[str, Any] = self.container(name).stats(stream=False, one_shot=True)
        return stats["cpu_stats"]

    def busy_loops(self, name: str) -> int:
        processes = self.container(name).top()["Processes"] or []
        return sum(STRESS in " ".join(p) for p in processes)


def per_second(sample: Callable[[], float], seconds: float = 2.0) -> float:
    first = sample()
    time.sleep(seconds)
    return (sample() - first) / seconds


def test_each_container_fault_acts_while_in_effect_and_heals_on_time(
    running, tmp_path: Path
) -> None:
    proc = running(experiment(tmp_path, "20s"))
    run = Run(tmp_path / "runs")
    run.wait("fault.apply", ("lossy", "lossy-link"))
    assert len(run.dropping("worker-0")) == 2 and len(run.dropping("toxiproxy")) == 2
    # Counted over the whole fault: a connection that lost a segment retransmits it after 200
    # ms, then 400, 800, ..., so in any two seconds it may retransmit once or not at all.
    before = {name: run.retransmitted(name) for name in ("worker-0", "toxiproxy")}
    run.wait("fault.heal", ("lossy", "lossy-link"))
    assert all(run.retransmitted(name) > n for name, n in before.items()), before
    assert run.dropping("worker-0") == [] and run.dropping("toxiproxy") == []

    run.wait("fault.apply", ("squeezed", "capped", "stressed"))
    squeezed = run.container("worker-1").attrs["HostConfig"]
    assert (squeezed["CpuQuota"], squeezed["CpuPeriod"]) == (1000, 100_000)
    throttled = per_second(lambda: run.cpu("worker-1")["throttling_data"]["throttled_periods"])
    assert throttled > 1  # periods in which the worker wanted more than its hundredth
    assert run.container("sink").attrs["HostConfig"]["Memory"] == CAP
    assert run.busy_loops("notifier") == 1
    used = per_second(lambda: run.cpu("notifier")["cpu_usage"]["total_usage"] / 1e9)
    assert used > 0.5  # cores: the busy loop takes most of one, whatever else runs
    run.wait("fault.heal", ("squeezed", "capped", "stressed"))
    assert run.container("worker-1").attrs["HostConfig"]["CpuQuota"] <= 0
    lifted = run.container("sink").attrs["HostConfig"]["Memory"]
    assert lifted == run.engine.info()["MemTotal"]  # the engine cannot lift it, only raise it
    assert run.busy_loops("notifier") == 0

    output = proc.communicate(timeout=180)[0].decode()
    assert proc.returncode == 0, output
    journal = json.loads((run.folder / "journal.json").read_text())
    effects = [e for e in journal["timeline"] if e["kind"] == "fault.effect"]
    assert {e["value"]["label"] for e in effects if e["value"]["bit"]} == set(LABELS), effects
    assert of_run(run.folder.name) == []


def test_sigterm_or_an_abort_heals_every_container_fault_in_effect(running, tmp_path: Path) -> None:
    """Every fault at once (on other components), then SIGTERM; then a run that aborts while
    they are in effect. Teardown heals each (state.jsonl says so) before the containers go."""
    at_once = FAULTS.replace("at: 10s", "at: 2s").replace("for: 6s", "for: 60s")
    at_once = at_once.replace("component: worker, cpus", "component: relay, cpus")
    proc = running(experiment(tmp_path, "70s", faults=at_once))
    run = Run(tmp_path / "runs")
    run.wait("fault.apply", LABELS)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143, proc.communicate()[0].decode()
    assert _healed_in_state(run.folder) == set(LABELS)
    assert of_run(run.folder.name) == []

    aborting = tmp_path / "aborting"
    aborting.mkdir()
    # The condition holds from the first second the faults are in effect.
    abort = "abort_if: ['sum(harness_load_requests_total) > 0']\n"
    proc = running(experiment(aborting, "70s", abort, at_once.replace("at: 2s", "at: 0s")))
    output = proc.communicate(timeout=180)[0].decode()
    assert proc.returncode == 2 and "aborted" in output, output
    (folder,) = (aborting / "runs").iterdir()
    assert _healed_in_state(folder) == set(LABELS)
    assert of_run(folder.name) == []


def _healed_in_state(folder: Path) -> set[str]:
    lines = [json.loads(line) for line in (folder / "state.jsonl").read_text().splitlines()]
    return {line["fault"] for line in lines if line.get("state") == "healed"}


def test_harness_down_after_a_sigkill_undoes_what_the_faults_left(
    running, tmp_path: Path, harness_cli
) -> None:
    at_once = FAULTS.replace("at: 10s", "at: 2s").replace("for: 6s", "for: 60s")
    at_once = at_once.replace("component: worker, cpus", "component: relay, cpus")
    proc = running(experiment(tmp_path, "70s", faults=at_once))
    run = Run(tmp_path / "runs")
    run.wait("fault.apply", LABELS)
    proc.kill()  # SIGKILL: no teardown can run
    proc.wait()
    assert len(run.dropping("worker-0")) == 2  # the faults outlive the harness
    assert run.container("relay").attrs["HostConfig"]["CpuQuota"] == 1000
    assert {f.key for f in in_effect(run.folder)} == set(LABELS)
    result = harness_cli("down")
    assert result.returncode == 0, result.stderr
    assert of_run(run.folder.name) == []
    assert in_effect(run.folder) == []
