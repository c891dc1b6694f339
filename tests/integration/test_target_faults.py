"""A target's own faults on the real Redis broker of the reference target: CLIENT PAUSE WRITE
and maxmemory squeezed to what it uses. Each is measured while in effect (a write waits, or is
refused as out of memory, while a read answers) and after it heals, and it is undone by every
path: its heal, a run that aborts, SIGTERM, and `harness down` after a SIGKILL (which stops the
broker, whose running state held the fault)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration]

TARGET = ROOT / "targets" / "redis-streams.yaml"
BOTH = """\
  - {name: paused, at: 2s, for: 5s, fault: write_pause}
  - {name: full, at: 9s, for: 5s, fault: out_of_memory}
"""


def experiment(folder: Path, timeline: str, duration: str = "16s", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "broker-faults.yaml"
    path.write_text(
        f"name: broker-faults\ntarget: {TARGET}\nload: {{rate: 50/s, duration: {duration}}}\n"
        f"drain: 20s\n{extra}timeline:\n{timeline}"
        "checks:\n  - {name: nothing acknowledged is lost, ledger: lost, expect: '== 0'}\n"
    )
    return path


def commands(runs: Path) -> list[str]:
    """The fault commands run so far, with how each ended: "<command> -> exit 0"."""
    log = next(runs.glob("*/logs/faults.log"), None)
    lines = log.read_text().splitlines() if log else []
    ran = [line.split(" $ ", 1)[1] for line in lines if " $ " in line]
    ends = [line.split(" exit ", 1)[1] for line in lines if " exit " in line]
    return [f"{command} -> exit {end}" for command, end in zip(ran, ends, strict=False)]


def wait_for(runs: Path, action: str, timeout_s: float = 120) -> redis.Redis:
    """Until a command of ``action`` has run; a client of the broker it acted on."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = [c for c in commands(runs) if f" {action}" in c]
        if done:
            assert done[-1].endswith("exit 0"), done
            host, port = re.search(r" (\S+):(\d+) ", done[-1]).groups()  # type: ignore[union-attr]
            # No retries (redis-py retries a timeout by default): one answer, or its timeout.
            return redis.Redis(
                host=host, port=int(port), socket_timeout=1, retry=Retry(NoBackoff(), 0)
            )
        time.sleep(0.1)
    pytest.fail(f"no {action} within {timeout_s:g}s: {commands(runs)}")


def refused(broker: redis.Redis) -> bool:
    """Whether a write is refused; until it is, each takes 10 kB more."""
    try:
        broker.set(f"probe-{time.monotonic_ns()}", "x" * 10_000)
    except redis.exceptions.OutOfMemoryError:  # Redis's "OOM command not allowed ..."
        return True
    return False


def test_each_broker_fault_acts_while_in_effect_and_heals_on_time(running, tmp_path: Path) -> None:
    proc = running(experiment(tmp_path, BOTH))
    runs = tmp_path / "runs"
    broker = wait_for(runs, "pause WRITE")
    assert broker.ping()  # reads go on
    with pytest.raises(redis.TimeoutError):
        broker.set("probe", "1")  # writes wait
    wait_for(runs, "unpause")
    assert broker.set("probe", "1")

    wait_for(runs, "squeeze-memory")
    deadline = time.monotonic() + 3
    while not refused(broker):  # the load's writes, or these, take the last bytes
        assert time.monotonic() < deadline, "no write was refused"
        time.sleep(0.1)
    wait_for(runs, "lift-memory")
    assert broker.config_get("maxmemory") == {"maxmemory": "0"}
    assert broker.set("probe", "1")

    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 0, output
    (folder,) = runs.iterdir()
    journal = json.loads((folder / "journal.json").read_text())
    applied = [e for e in journal["timeline"] if e["kind"] == "fault.apply"]
    assert [(e["value"]["fault"], e["outcome"]) for e in applied] == [
        ("write_pause", "ok"), ("out_of_memory", "ok"),
    ]  # fmt: skip
    assert applied[0]["value"]["vars"] == {"mode": "WRITE", "expires_ms": "600000"}


def test_sigterm_or_an_abort_heals_a_broker_fault_in_effect(running, tmp_path: Path) -> None:
    proc = running(
        experiment(tmp_path / "a", "  - {at: 1s, for: 60s, fault: write_pause}\n", "70s")
    )
    broker = wait_for(tmp_path / "a/runs", "pause WRITE")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143, proc.communicate()[0].decode()
    assert commands(tmp_path / "a/runs")[-1].endswith("unpause -> exit 0")
    with pytest.raises(redis.ConnectionError):
        broker.ping()  # and the broker itself is gone with the run

    abort = "abort_if: ['sum(harness_load_requests_total) > 0']\n"
    timeline = "  - {at: 0s, for: 60s, fault: out_of_memory}\n"
    proc = running(experiment(tmp_path / "b", timeline, "70s", abort))
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 2 and "aborted" in output, output
    ran = commands(tmp_path / "b/runs")
    assert [c.split()[-4:] for c in ran] == [
        ["squeeze-memory", "->", "exit", "0"], ["lift-memory", "->", "exit", "0"],
    ], ran  # fmt: skip


def test_harness_down_after_a_sigkill_stops_the_paused_broker(
    running, tmp_path: Path, harness_cli
) -> None:
    proc = running(experiment(tmp_path, "  - {at: 1s, for: 60s, fault: write_pause}\n", "70s"))
    broker = wait_for(tmp_path / "runs", "pause WRITE")
    proc.kill()
    proc.wait()
    with pytest.raises(redis.TimeoutError):
        broker.set("probe", "1")  # the pause outlives the harness
    result = harness_cli("down")
    assert result.returncode == 0, result.stderr
    with pytest.raises(redis.ConnectionError):
        broker.ping()
