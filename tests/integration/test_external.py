"""A component that already runs (a staging broker, here a real redis-server the test started)
is reached, never started, stopped or signalled; one that does not answer stops the run."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import components
from harness.deploy.links import ToxiproxyServer
from harness.deploy.ports import PortAllocator
from tests.conftest import ROOT, harness_argv
from tests.integration.quick_experiments import QUICK, reference_target
from tests.integration.redis_streams_stack import Stack
from tests.integration.test_run import _wait_for_event, journal_of, leftovers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOW_LINK = "timeline:\n  - {at: 1s, for: 3s, fault: latency, link: worker->broker, latency: 200}\n"


def external_broker(address: str) -> list[str]:
    """The reference target with its broker swapped for one that already runs."""
    return ["--set", "broker.command=[]", "--set", f"broker.external={address}"]


def test_an_external_broker_carries_the_run_and_is_left_running(
    harness_cli, stack: Stack, tmp_path: Path
) -> None:
    client = stack.start_redis()
    experiment = tmp_path / "external.yaml"
    experiment.write_text("name: external\n" + QUICK.replace("checks:", SLOW_LINK + "checks:"))
    result = harness_cli(
        "run", str(experiment), "--runs-dir", str(tmp_path / "runs"),
        *external_broker(f"127.0.0.1:{stack.redis_port}"),
    )  # fmt: skip
    journal = journal_of(tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal["ledger"]["lost"] == 0 and journal["ledger"]["acknowledged"] > 100
    # The jobs went through the existing Redis, behind the proxy the fault slowed.
    assert client.xlen("jobs") == journal["ledger"]["acknowledged"]
    events = [json.loads(line) for line in (Path(journal["run_dir"]) / "events.jsonl").open()]
    assert any(e["kind"] == "fault.apply" and e["outcome"] == "ok" for e in events)
    # Reached, not owned: no process of the run stands for it, and it still runs afterwards.
    assert "broker" not in journal["components"]
    assert client.ping()
    assert not leftovers(Path(journal["run_dir"]), journal)


def test_an_external_component_that_does_not_answer_stops_the_run(
    harness_cli, tmp_path: Path
) -> None:
    nobody = PortAllocator().allocate()
    experiment = tmp_path / "external.yaml"
    experiment.write_text("name: external\n" + QUICK)
    result = harness_cli(
        "run", str(experiment), "--runs-dir", str(tmp_path / "runs"),
        *external_broker(f"127.0.0.1:{nobody}"), "--set", "broker.ready.timeout=1s",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"broker (external, 127.0.0.1:{nobody}) did not answer" in result.stderr
    assert "Traceback" not in result.stderr
    journal = journal_of(tmp_path / "runs")
    assert journal["verdict"] == "inconclusive"
    assert not leftovers(Path(journal["run_dir"]), journal)


@pytest.fixture
def shared_toxiproxy(tmp_path: Path) -> Iterator[str]:
    """A real Toxiproxy the run does not own, with someone else's proxy and toxic on it."""
    ports = PortAllocator()
    server = ToxiproxyServer(
        components.find("toxiproxy-server"), ports.allocate(), tmp_path / "toxiproxy.log"
    )
    server.start()
    server.wait_ready()
    url = f"http://127.0.0.1:{server.port}"
    theirs = {"name": "theirs", "listen": f"127.0.0.1:{ports.allocate()}", "upstream": "x:1"}
    httpx.post(f"{url}/proxies", json=theirs).raise_for_status()
    toxic = {"name": "slow", "type": "latency", "attributes": {"latency": 5}}
    httpx.post(f"{url}/proxies/theirs/toxics", json=toxic).raise_for_status()
    try:
        yield url
    finally:
        server.stop()


def proxies(url: str) -> dict[str, dict[str, object]]:
    answer: dict[str, dict[str, object]] = httpx.get(f"{url}/proxies").json()
    return answer


def test_an_existing_toxiproxy_carries_the_links_and_keeps_what_is_not_the_runs(
    harness_cli, shared_toxiproxy: str, tmp_path: Path
) -> None:
    url = shared_toxiproxy
    target = reference_target(tmp_path, f"toxiproxy: {{url: '{url}'}}\n")
    experiment = tmp_path / "shared.yaml"
    experiment.write_text(
        "name: shared\n"
        + QUICK.replace(str(ROOT / "targets" / "redis-streams.yaml"), str(target)).replace(
            "checks:", SLOW_LINK + "checks:"
        )
    )
    result = harness_cli("run", str(experiment), "--runs-dir", str(tmp_path / "runs"))
    journal = journal_of(tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in (Path(journal["run_dir"]) / "events.jsonl").open()]
    assert any(e["kind"] == "fault.apply" and e["outcome"] == "ok" for e in events)
    assert "toxiproxy" not in journal["components"]  # none of the run's own was started
    # Its own proxies are gone; the other one is as it was, toxic and all.
    assert list(proxies(url)) == ["theirs"]
    assert [t["name"] for t in proxies(url)["theirs"]["toxics"]] == ["slow"]  # type: ignore[union-attr]

    # A harness killed outright leaves its proxies there; harness down removes them.
    slow = tmp_path / "slow.yaml"
    slow.write_text(experiment.read_text().replace("duration: 6s", "duration: 60s"))
    proc = subprocess.Popen(
        harness_argv("run", str(slow), "--runs-dir", str(tmp_path / "killed")),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _wait_for_event(tmp_path / "killed", "fault.apply", timeout_s=90)
    finally:
        proc.kill()
        proc.wait()
    left = [name for name in proxies(url) if name != "theirs"]
    assert len(left) == 6 and all("->" in name for name in left), left
    down = harness_cli("down")
    assert "removed 6 proxies a harness that was killed left on an existing Toxiproxy" in (
        down.stdout
    ), down.stdout
    assert list(proxies(url)) == ["theirs"]
