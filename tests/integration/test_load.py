"""The load step against real HTTP servers: a real Locust process, its ledger and its metrics."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from harness.errors import ComponentFailed
from harness.ledger.files import SendOutcome, read_sends
from harness.load import LoadPlan, LoadProcess

pytestmark = [pytest.mark.integration]

RATE = 50.0
DURATION_S = 3.0
# The test machine may have an http_proxy set; loopback scrapes must not go through it.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Producer:
    """What a stand-in producer answers, and the ids it has received so far."""

    status: int
    delay_s: float = 0.0
    received: list[str] = field(default_factory=list)
    bodies: list[tuple[str, str]] = field(default_factory=list)  # content type, body
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


@contextmanager
def producer(status: int, delay_s: float = 0.0) -> Iterator[Producer]:
    """A producer on a free loopback port answering every POST with status after delay_s."""
    state = Producer(status, delay_s)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            content_type = self.headers.get("Content-Type", "")
            with state.lock:
                state.bodies.append((content_type, body.decode()))
                if content_type == "application/json":
                    state.received.append(json.loads(body)["id"])
            time.sleep(state.delay_s)
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest output readable

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # stalled handlers must not hold up teardown
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def scrape(port: int) -> str:
    """The metrics text on port, or "" while nothing answers there."""
    try:
        with _NO_PROXY.open(f"http://127.0.0.1:{port}/metrics", timeout=1.0) as response:
            text: str = response.read().decode()
            return text
    except OSError:
        return ""


def sample(text: str, name: str, labels: str = "") -> float | None:
    """The value of one sample in Prometheus text format, e.g. sample(t, "x_total", 'a="b"')."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def group_members(pgid: int) -> list[int]:
    """Live processes in the process group pgid (zombies included: they are not reaped yet)."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def make_plan(tmp_path: Path, host: str, **overrides: object) -> LoadPlan:
    fields: dict[str, object] = {
        "host": host,
        "path": "/jobs",
        "rate": RATE,
        "duration_s": DURATION_S,
        "metrics_port": free_port(),
        "ledger_path": tmp_path / "sends.jsonl",
        "log_path": tmp_path / "locust.log",
        "seed": 0xC0FFEE,
    }
    fields.update(overrides)
    return LoadPlan(**fields)  # type: ignore[arg-type]


def run(plan: LoadPlan, started: list[LoadProcess]) -> LoadProcess:
    process = LoadProcess(plan)
    started.append(process)
    process.start()
    return process


def ledger_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_acknowledged_sends_are_ok_and_counted(tmp_path: Path, started: list[LoadProcess]) -> None:
    with producer(202) as target:
        plan = make_plan(tmp_path, target.url)
        process = run(plan, started)

        # The metrics endpoint reports sends while the run is going on, not only at its end.
        def counted_ok() -> bool:
            ok = sample(scrape(plan.metrics_port), "harness_load_requests_total", 'outcome="ok"')
            return ok is not None and ok > 0

        assert wait_until(counted_ok, timeout_s=DURATION_S)
        assert process.running()
        assert process.wait(timeout=30) == 0

    sends = read_sends(plan.ledger_path)
    invoked = [line["id"] for line in ledger_lines(plan.ledger_path) if line["type"] == "invoke"]
    assert len(invoked) == len(set(invoked)), "message ids repeat"
    assert all(str(i).startswith("00c0ffee-") for i in invoked)
    assert set(sends.values()) == {SendOutcome.OK}
    # Loose on purpose: the machine is shared, only gross rate errors should fail this.
    assert 60 <= len(sends) <= 180
    assert sorted(target.received) == sorted(sends)


def test_a_body_template_carries_each_id_in_the_systems_own_format(
    tmp_path: Path, started: list[LoadProcess]
) -> None:
    template = '<job ref="{id}" n="{seq}"/>'
    with producer(202) as target:
        plan = make_plan(
            tmp_path, target.url, body=template, content_type="application/xml", duration_s=1.0
        )
        assert run(plan, started).wait(timeout=30) == 0

    sends = read_sends(plan.ledger_path)
    assert sends and set(sends.values()) == {SendOutcome.OK}
    assert {content_type for content_type, _ in target.bodies} == {"application/xml"}
    refs = [re.fullmatch(r'<job ref="([^"]+)" n="\d+"/>', body) for _, body in target.bodies]
    assert sorted(m.group(1) for m in refs if m) == sorted(sends)


def test_refused_sends_are_fail(tmp_path: Path, started: list[LoadProcess]) -> None:
    with producer(503) as target:
        plan = make_plan(tmp_path, target.url)
        process = run(plan, started)
        assert process.wait(timeout=30) == 0, "refusals must not fail the load step"

    sends = read_sends(plan.ledger_path)
    assert sends
    assert set(sends.values()) == {SendOutcome.FAIL}
    completions = [line for line in ledger_lines(plan.ledger_path) if line["type"] != "invoke"]
    assert {(line["status"], line["error"]) for line in completions} == {(503, "HTTP 503")}


def test_unanswered_sends_are_info(tmp_path: Path, started: list[LoadProcess]) -> None:
    with producer(202, delay_s=2.0) as target:
        plan = make_plan(tmp_path, target.url, timeout_s=0.5)
        process = run(plan, started)
        assert process.wait(timeout=30) == 0

    sends = read_sends(plan.ledger_path)
    assert sends
    assert set(sends.values()) == {SendOutcome.INFO}
    completions = [line for line in ledger_lines(plan.ledger_path) if line["type"] != "invoke"]
    # Every send got its own timeout verdict: none is INFO merely for lack of a completion.
    assert {line["id"] for line in completions} == set(sends)
    assert all(line["type"] == "info" and line["status"] is None for line in completions)
    assert all("timed out" in str(line["error"]) for line in completions)


def test_stop_flushes_the_ledger_and_leaves_no_process(
    tmp_path: Path, started: list[LoadProcess]
) -> None:
    # Slow answers keep every user mid-request when SIGTERM lands: their completion lines come
    # after the last periodic flush, so only the flush at shutdown can save them.
    with producer(202, delay_s=0.3) as target:
        plan = make_plan(tmp_path, target.url, duration_s=60.0)
        process = run(plan, started)
        pid = process.pid
        assert pid is not None
        assert wait_until(lambda: len(target.received) >= 10, timeout_s=10)

        process.stop()
        process.stop()  # idempotent
        received = set(target.received)

    assert not process.running()
    assert process.wait(timeout=0) == 0
    assert not psutil.pid_exists(pid)
    assert group_members(pid) == []
    # A send reaches the producer only after its invoke line was buffered, so every id the
    # producer saw must be in the ledger, with the answer it got.
    sends = read_sends(plan.ledger_path)
    assert received <= set(sends)
    assert {sends[i] for i in received} == {SendOutcome.OK}


def test_start_fails_when_the_metrics_port_is_taken(
    tmp_path: Path, started: list[LoadProcess]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        plan = make_plan(tmp_path, "http://127.0.0.1:9", metrics_port=port)
        with pytest.raises(ComponentFailed) as failure:
            run(plan, started)

    assert failure.value.component == "load"
    assert f"127.0.0.1:{port}" in failure.value.log_tail
    assert "exited with code" in failure.value.reason  # noticed the exit, not a timeout
    assert not started[0].running()


def test_a_master_and_workers_share_the_load_into_one_ledger(
    tmp_path: Path, started: list[LoadProcess]
) -> None:
    """Real Locust master and worker processes on loopback: the workers send, the master
    collects every worker's ledger lines and counts into its one file and endpoint. Slow
    answers keep sends in flight at the end: their outcomes must reach the ledger too."""
    with producer(202, delay_s=0.3) as target:
        plan = make_plan(tmp_path, target.url, workers=2, master_port=free_port(), users=20)
        process = run(plan, started)
        assert [p.name for p in process.processes] == ["load", "load-worker-1", "load-worker-2"]

        def counted_ok() -> float:
            return sample(scrape(plan.metrics_port), "harness_load_requests_total", 'outcome="ok"')

        assert wait_until(lambda: (counted_ok() or 0) > 0, timeout_s=DURATION_S + 10)
        assert process.wait(timeout=30) == 0
        assert wait_until(lambda: not any(p.running() for p in process.processes), 15)

    sends = read_sends(plan.ledger_path)
    invoked = [line["id"] for line in ledger_lines(plan.ledger_path) if line["type"] == "invoke"]
    assert len(invoked) == len(set(invoked)), "message ids repeat across workers"
    assert set(sends.values()) == {SendOutcome.OK}
    assert 60 <= len(sends) <= 180
    assert sorted(target.received) == sorted(sends)
    # Users are numbered worker by worker (number % workers is the worker): both sent.
    assert {int(str(i).split("-")[1]) % 2 for i in invoked} == {0, 1}
    for n in (1, 2):
        assert (tmp_path / f"locust-worker-{n}.log").exists()
