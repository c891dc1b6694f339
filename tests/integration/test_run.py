"""`harness run` end to end on real Redis, Toxiproxy, Prometheus and Locust, as a subprocess."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import psutil
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from harness import components
from harness.deploy.ports import PortAllocator
from harness.observe.prometheus import Prometheus, ScrapeTarget
from harness.report import charts, panels
from tests.conftest import ROOT, harness_argv
from tests.integration import browser
from tests.integration.catalogue import SHIPPED
from tests.integration.quick_experiments import reference_target, write_sound_and_weak

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHORT = SHIPPED[0].sets(shorter=True)  # slow-consumer in about 45 s


def journal_of(runs_dir: Path) -> dict[str, Any]:
    (run_dir,) = runs_dir.iterdir()
    data: dict[str, Any] = json.loads((run_dir / "journal.json").read_text())
    return data


def leftovers(run_dir: Path, journal: dict[str, Any] | None = None) -> list[str]:
    """Processes still alive that belong to the run: recorded pids, or the run folder in argv."""
    pids = {c["pid"] for c in (journal or {}).get("components", {}).values() if c["pid"]}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] in pids or str(run_dir) in cmdline:
            found.append(f"{proc.info['pid']}: {cmdline}")
    return found


def check(journal: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in journal["checks"] if c["name"] == name)


@pytest.mark.usefixtures("busy_core")
def test_slow_consumer_holds_against_the_reference_target(harness_cli, tmp_path: Path) -> None:
    result = harness_cli(
        "run", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path), *SHORT
    )
    journal = journal_of(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal["verdict"] == "held"
    assert all(c["verdict"] == "held" for c in journal["checks"]), journal["checks"]
    assert "recovered" in check(journal, "backlog drains within 20 s of heal")["observed"]
    # Real numbers were observed: the backlog really grew past the threshold.
    backlog = check(journal, "backlog builds while consumers are slow")["observed"]
    assert float(backlog.split()[0]) > 500  # "612 at +20s": the first sample past 500
    ledger = journal["ledger"]
    assert ledger["acknowledged"] > 1000 and ledger["lost"] == 0
    kinds = [(e["kind"], e["outcome"]) for e in journal["timeline"]]
    assert ("fault.apply", "ok") in kinds and ("fault.heal", "ok") in kinds
    apply = next(e for e in journal["timeline"] if e["kind"] == "fault.apply")
    assert apply["target"] == "worker->broker" and apply["value"]["latency"] == 300
    cases = ET.parse(Path(journal["run_dir"]) / "junit.xml").getroot().iter("testcase")
    assert len(list(cases)) == len(journal["checks"])
    assert "verdict: held" in result.stdout
    # A slow run explains itself: every process's start, readiness and CPU is in the journal.
    components = journal["components"]
    assert {"prometheus", "toxiproxy", "load", "broker", "worker-0", "probe"} <= set(components)
    for name, record in components.items():
        assert record["started_at"] >= journal["moments"]["start"] - 60, name
        assert record["ready_s"] is not None and record["cpu_s"] is not None, (name, record)
    assert components["load"]["cpu_s"] > 0 and journal["harness_cpu_s"] > 0
    assert [e["kind"] for e in journal["timeline"]][-1] == "teardown"
    assert not leftovers(Path(journal["run_dir"]), journal)
    report_shows_the_run(harness_cli, Path(journal["run_dir"]), journal, tmp_path)


def report_shows_the_run(
    harness_cli, run_dir: Path, journal: dict[str, Any], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """report.html opens offline in a real browser, every chart drew data, nothing complained;
    and every panel's query (the dashboards' too) answered from the run's real Prometheus."""
    saved = json.loads((run_dir / "series.json").read_text())
    assert [chart["title"] for chart in saved] == [
        *(p.title for p in panels.for_target("redis-streams")),
        charts.UNSEEN,
    ]
    # The ledger's chart: something waited while the link was slow, nothing at the end.
    unseen = saved[-1]["lines"][0]["points"]
    assert max(n for _, n in unseen) > 0 and unseen[-1][1] == 0
    for chart in saved:
        assert chart["lines"] and all(len(line["points"]) > 20 for line in chart["lines"]), chart
    page = run_dir / "report.html"
    # Self-contained: nothing to fetch, so it opens offline.
    assert not re.search(r"""(src|href)=["']?[a-z]+:""", page.read_text())
    rendered = browser.render(page, tmp_path / "report.png", tmp_path / "chromium")
    assert rendered.console == []
    assert (tmp_path / "report.png").stat().st_size > 50_000
    assert rendered.dom.count('class="chart"') == len(saved)
    drawn = [int(n) for n in re.findall(r'class="series" data-points="(\d+)"', rendered.dom)]
    assert len(drawn) >= len(saved) and min(drawn) > 20
    assert rendered.dom.count('class="fault"') == len(saved)  # the one fault, on every chart
    assert all(c["name"] in rendered.dom for c in journal["checks"])
    # The report comes back from the journal and the saved series alone.
    page.unlink()
    again = harness_cli("report", str(run_dir))
    assert again.returncode == 0 and page.is_file(), again.stderr
    assert page.read_text().count('class="series"') == len(drawn)


@pytest.mark.usefixtures("busy_core")
def test_workers_too_slow_to_drain_fail_the_recovery_check(harness_cli, tmp_path: Path) -> None:
    result = harness_cli(
        "run", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path), *SHORT,
        "--set", "worker.env.PROCESS_MS=40", "--set", "drain=8s", "--json",
    )  # fmt: skip
    journal = journal_of(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert journal["verdict"] == "failed"
    # --json: one document on stdout for scripts, and no progress chatter on stderr.
    document = json.loads(result.stdout)
    assert (document["verdict"], document["exit_code"]) == ("failed", 1)
    assert document["runs"][0]["checks"] == journal["checks"]
    assert document["runs"][0]["run_dir"] == journal["run_dir"]
    assert result.stderr == ""
    recovery = check(journal, "backlog drains within 20 s of heal")
    assert recovery["verdict"] == "failed"
    assert "never recovered" in recovery["observed"]
    # The threshold and window kinds fail against the same weakness.
    assert check(journal, "steady state after recovery: backlog near empty")["verdict"] == "failed"
    latency = check(journal, "end-to-end p95 latency back under 5 s from 20 s after heal")
    assert latency["verdict"] == "failed"
    assert not leftovers(Path(journal["run_dir"]), journal)


def test_the_run_waits_for_a_recovery_still_under_way(harness_cli, tmp_path: Path) -> None:
    """The drain is over at once here, but one condition only turns true about 20 s after the
    load starts: the run lasts until it does, and no longer than a window that cannot recover."""
    late = "time() - min(process_start_time_seconds{job='sink'}) > 25"
    experiment = tmp_path / "late.yaml"
    experiment.write_text(
        f"name: late\ntarget: {ROOT / 'targets' / 'redis-streams.yaml'}\n"
        "load: {rate: 20/s, duration: 4s}\n"
        "checks:\n"
        f'  - {{name: comes back late, recovers: "{late}", after: load.end, within: 60s}}\n'
        "  - {name: never back, recovers: 'vector(0) > 1', after: load.end, within: 3s}\n"
    )
    harness_cli("run", str(experiment), "--runs-dir", str(tmp_path / "runs"))
    journal = journal_of(tmp_path / "runs")
    assert check(journal, "comes back late")["verdict"] == "held", journal["checks"]
    never = check(journal, "never back")
    assert (never["verdict"], "never recovered" in never["observed"]) == ("failed", True), never
    assert not leftovers(Path(journal["run_dir"]), journal)


def test_checks_read_an_existing_prometheus_too(harness_cli, tmp_path: Path) -> None:
    """A topology naming an existing Prometheus (a staging system's, here a real one scraping a
    gauge) gets its series in the run's checks, and the run's own scrape health unconfused."""
    registry = CollectorRegistry()
    Gauge("staging_backlog", "waiting in staging", registry=registry).set(5)
    ports = PortAllocator()
    app_port = ports.allocate()
    server, _thread = start_http_server(app_port, addr="127.0.0.1", registry=registry)
    (tmp_path / "existing" / "logs").mkdir(parents=True)
    existing = Prometheus(
        components.find("prometheus"), ports.allocate(), tmp_path / "existing",
        [ScrapeTarget("staging", app_port)],
    )  # fmt: skip
    existing.start()
    target = reference_target(tmp_path, f"prometheus: {{url: '{existing.url}'}}\n")
    experiment = tmp_path / "staging-check.yaml"
    experiment.write_text(
        f"name: staging-check\ntarget: {target}\nload: {{rate: 20/s, duration: 4s}}\nchecks:\n"
        "  - {name: staging backlog seen, query: staging_backlog, at: end, expect: '== 5'}\n"
        "  - {name: staging backlog large, query: staging_backlog, at: end, expect: '> 100'}\n"
    )
    try:
        existing.wait_ready()
        result = harness_cli("run", str(experiment), "--runs-dir", str(tmp_path / "runs"))
    finally:
        existing.stop()
        server.shutdown()
    journal = journal_of(tmp_path / "runs")
    assert result.returncode == 1, result.stdout + result.stderr
    assert check(journal, "staging backlog seen")["verdict"] == "held", journal["checks"]
    assert check(journal, "staging backlog large")["verdict"] == "failed", journal["checks"]
    events = (Path(journal["run_dir"]) / "events.jsonl").read_text().splitlines()
    assert not [e for e in events if json.loads(e)["kind"] == "observe.gap"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_tears_everything_down(tmp_path: Path, signum: signal.Signals) -> None:
    proc = subprocess.Popen(
        harness_argv("run", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path), *SHORT),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        events = _wait_for_event(tmp_path, "fault.apply", timeout_s=90)
        assert events, "the fault was never applied"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, out + err
    journal = journal_of(tmp_path)
    assert journal["verdict"] == "aborted"
    assert signal.Signals(signum).name in journal["reason"]
    assert not leftovers(Path(journal["run_dir"]), journal)
    assert "Traceback" not in err


def _wait_for_event(runs_dir: Path, kind: str, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in runs_dir.glob("*/events.jsonl"):
            events = [json.loads(line) for line in path.read_text().splitlines() if line]
            if any(e["kind"] == kind for e in events):
                return events
        time.sleep(0.2)
    return []


def test_a_component_that_exits_at_start_is_reported_with_its_log(
    harness_cli, tmp_path: Path
) -> None:
    result = harness_cli(
        "run", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path),
        "--set", "broker.command=[redis-server, --port, '{port}', --no-such-option, x]",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "broker exited with code" in result.stderr
    assert "no-such-option" in result.stderr  # the tail of redis' own log
    assert "Traceback" not in result.stderr
    journal = journal_of(tmp_path)
    assert journal["verdict"] == "inconclusive"
    assert not leftovers(Path(journal["run_dir"]), journal)


def test_a_taken_port_is_an_environment_error(harness_cli, tmp_path: Path) -> None:
    with psutil_socket() as port:
        result = harness_cli(
            "run", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path),
            "--set", f"broker.port={port}",
        )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    journal = journal_of(tmp_path)
    assert not leftovers(Path(journal["run_dir"]), journal)


class psutil_socket:
    """Holds a listening socket on a free port for the duration of the block."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        port: int = self.sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_a_missing_binary_says_how_to_install_it(harness_cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"HARNESS_HOME": str(empty), "PATH": f"{empty}{os.pathsep}/usr/bin:/bin"}
    result = harness_cli(
        "run", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path / "runs"), env=env
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "toxiproxy-server is not installed; install it with:" in result.stderr
    assert "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0" in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing was started, not even a run folder


def test_bad_input_exits_3_naming_file_line_and_field(harness_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "experiments" / "slow-consumer.yaml").read_text()
    bad.write_text(text.replace("link: worker->broker", "link: worker->brokr"))
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "brokr" in t)
    result = harness_cli("run", str(bad), "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 3
    assert f"{bad}:{line}: timeline[0].link: no link 'worker->brokr'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_folder_runs_every_experiment_and_exits_with_the_worst_verdict(
    harness_cli, tmp_path: Path
) -> None:
    experiments = tmp_path / "experiments"
    write_sound_and_weak(experiments)
    report = tmp_path / "reports" / "junit.xml"
    result = harness_cli(
        "run", str(experiments), "--runs-dir", str(tmp_path / "runs"), "--junit", str(report)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    suites = ET.parse(report).getroot().findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in suites] == [
        ("sound", "1", "0"),
        ("weak", "2", "1"),
    ]
    verdicts = sorted(
        json.loads(p.read_text())["verdict"] for p in (tmp_path / "runs").glob("*/journal.json")
    )
    assert verdicts == ["failed", "held"]
    table = result.stdout[result.stdout.index("experiments") :]
    assert "sound" in table and "weak" in table and "failed" in table


def test_an_abort_condition_heals_the_fault_and_stops_the_run(harness_cli, tmp_path: Path) -> None:
    result = harness_cli(
        "run", "experiments/paused-consumer.yaml", "--runs-dir", str(tmp_path),
        "--set", "timeline.0.at=3s", "--set", "timeline.0.count=2",
        "--set", "abort_if=['sum(harness_queue_depth{queue=\"jobs\"}) > 300']", "--quiet",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    journal = journal_of(tmp_path)
    assert journal["verdict"] == "aborted"
    assert 'abort_if sum(harness_queue_depth{queue="jobs"}) > 300 fired' in journal["reason"]
    kinds = [e["kind"] for e in journal["timeline"]]
    assert kinds.index("fault.apply") < kinds.index("abort") < kinds.index("fault.heal")
    heal = next(e for e in journal["timeline"] if e["kind"] == "fault.heal")
    assert heal["outcome"] == "ok"
    # The run stopped when the backlog passed 300, while the load was still running.
    assert "load.end" not in journal["moments"]
    assert not leftovers(Path(journal["run_dir"]), journal)
    # --quiet: the verdict in one line, and nothing while running.
    assert result.stdout.strip() == f"paused-consumer: aborted ({journal['run_dir']})"
    assert "load:" not in result.stderr


def owned_by(pid: int) -> list[str]:
    """Processes started by the harness ``pid``: named so in their environment, or recorded."""
    recorded = set()
    for path in (components.home() / "live").glob(f"*_{pid}_*.jsonl"):  # boot_ns_pid_time
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        recorded |= {e["pid"] for e in entries if "pid" in e}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            owner = proc.environ().get("HARNESS_OWNER", "")
        except psutil.Error:
            owner = ""
        mine = owner.split(":")[-2:-1] == [str(pid)] or proc.info["pid"] in recorded
        if mine and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{proc.info['pid']}: {' '.join(proc.info['cmdline'] or [])}")
    return found


def test_after_a_sigkill_harness_down_removes_what_the_run_left(
    harness_cli, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        harness_argv("run", "experiments/paused-consumer.yaml", "--runs-dir", str(tmp_path),
                     "--set", "timeline.0.at=1s"),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _wait_for_event(tmp_path, "fault.apply", timeout_s=90), "the fault never came"
    finally:
        proc.kill()  # SIGKILL: no teardown can run
        proc.wait()
    left = owned_by(proc.pid)
    assert any("toxiproxy" in p for p in left) and any("redis-server" in p for p in left), left
    result = harness_cli("down")
    assert result.returncode == 0, result.stderr
    assert f"removed {len(left)} processes" in result.stdout
    # The state file named the fault before it was applied; down says it undid it.
    assert "undid 1 fault still in effect" in result.stdout, result.stdout
    assert "hang (pause on worker worker-" in result.stdout, result.stdout
    assert not owned_by(proc.pid)
    (run_dir,) = tmp_path.iterdir()
    state = [json.loads(line) for line in (run_dir / "state.jsonl").read_text().splitlines()]
    assert [s["state"] for s in state] == ["applying", "torn down"], state
    assert state[-1]["by"] == "harness down"
    again = harness_cli("down")
    assert "nothing left behind" in again.stdout


@pytest.mark.parametrize(
    ("victim", "reason"),
    [
        ("/prometheus", "did not answer"),
        ("-m locust", "the load generator (Locust) exited"),
        ("redis_streams/probe.py", "probe was not scraped (down or not answering) from"),
    ],
)
def test_a_measurement_source_dying_mid_run_is_never_held(
    tmp_path: Path, victim: str, reason: str
) -> None:
    proc = subprocess.Popen(
        harness_argv("run", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path), *SHORT,
                     "--set", "drain=5s"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _wait_for_event(tmp_path, "fault.apply", timeout_s=90), "the fault never came"
        (pid,) = [int(p.split(":")[0]) for p in owned_by(proc.pid) if victim in p]
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out + err
    journal = journal_of(tmp_path)
    assert journal["verdict"] == "inconclusive"
    assert reason in (journal["reason"] or "") + json.dumps(journal["checks"])
    assert not leftovers(Path(journal["run_dir"]), journal)


INTERRUPTIBLE = """\
name: interruptible
target: {target}
load: {{rate: 100/s, duration: 6s}}
drain: 5s
timeline:
  - {{name: slow, at: 1s, for: 4s, fault: latency, link: worker->broker, latency: 100}}
  - {{name: hang, at: 2s, for: 2s, fault: pause, component: worker, count: 1}}
checks:
  - {{name: nothing lost, ledger: lost, expect: "== 0"}}
"""


def test_interrupted_anywhere_a_run_leaves_nothing_behind(harness_cli, tmp_path: Path) -> None:
    """A seeded point in each of 9 equal spans from start-up to teardown (1 s to 12 s), each
    signal three times: SIGINT, SIGTERM or SIGKILL (then down)."""
    experiment = tmp_path / "interruptible.yaml"
    experiment.write_text(INTERRUPTIBLE.format(target=ROOT / "targets" / "redis-streams.yaml"))
    rng = random.Random(2026)
    points = 9
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL] * (points // 3)
    rng.shuffle(signals)
    for point, signum in enumerate(signals):
        after_s = 1.0 + 11.0 * (point + rng.random()) / points
        runs = tmp_path / f"runs-{point}"
        proc = subprocess.Popen(
            harness_argv("run", str(experiment), "--runs-dir", str(runs)),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(after_s)
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        where = f"point {point}: {signum.name} after {after_s:.1f}s"
        if signum == signal.SIGKILL:
            assert harness_cli("down").returncode == 0
        else:
            assert proc.returncode in (0, 1, 2, 128 + signum), f"{where}: {err}"
            assert "Traceback" not in err, where
        assert not owned_by(proc.pid), f"{where}: {owned_by(proc.pid)}"
        for run_dir in runs.glob("*"):  # the journal says how far the run got
            events = (run_dir / "events.jsonl").read_text().splitlines()
            assert all(json.loads(line) for line in events), where
            if signum != signal.SIGKILL:
                journal = json.loads((run_dir / "journal.json").read_text())
                aborted = proc.returncode == 128 + signum
                assert (journal["verdict"] == "aborted") == aborted, where


REMOTE = """\
name: remote-load
target: {target}
load: {{rate: 100/s, duration: 8s}}
drain: 10s
checks:
  - {{name: nothing lost, ledger: lost, expect: "== 0"}}
  - {{name: nothing unexpected, ledger: unexpected, expect: "== 0"}}
"""


def test_a_remote_load_worker_joins_the_run_through_the_master(harness_cli, tmp_path: Path) -> None:
    """A master with one local worker and one `harness load-worker` started apart, as on
    another machine (here on loopback), drives the real target: one complete ledger."""
    experiment = tmp_path / "remote.yaml"
    experiment.write_text(REMOTE.format(target=ROOT / "targets" / "redis-streams.yaml"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = subprocess.Popen(
        harness_argv("run", str(experiment), "--runs-dir", str(tmp_path / "runs"),
                     "--set", "load.workers=1",
                     "--remote-load-workers", "1", "--load-master", f"127.0.0.1:{port}"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        harness_argv("load-worker", "--master", f"127.0.0.1:{port}"),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out, err = run.communicate(timeout=120)
        worker_err = worker.communicate(timeout=30)[1]
    finally:
        for proc in (run, worker):
            if proc.poll() is None:
                proc.kill()
    assert run.returncode == 0, out + err
    assert f"harness load-worker --master 127.0.0.1:{port}" in " ".join(err.split())
    assert worker.returncode == 0, worker_err
    journal = journal_of(tmp_path / "runs")
    assert journal["components"]["load-worker-1"]["cpu_s"] > 0
    assert "load-worker-2" not in journal["components"]  # the remote one is not the harness's
    ledger = journal["ledger"]
    assert 600 <= ledger["acknowledged"] <= 1000 and ledger["indeterminate"] == 0
    # Both workers sent: user numbers are interleaved by worker (number % 2 is the worker).
    sent = (Path(journal["run_dir"]) / "ledger" / "sent.jsonl").read_text().splitlines()
    assert {int(json.loads(line)["id"].split("-")[1]) % 2 for line in sent} == {0, 1}
    assert not leftovers(Path(journal["run_dir"]), journal)
