"""Helpers for the integration tests of the Redis Streams reference target: a redis-server and
the services of targets/redis_streams/ as real processes on free ports, and ways to look at them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

TARGETS = Path(__file__).resolve().parents[2] / "targets"
SHARED = ("sink", "notifier")  # broker-neutral services, in targets/services
HTTP_SERVICES = ("api", "sink", "notifier")  # the others serve only /metrics, on METRICS_PORT
Q = {"queue": "jobs"}
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(url: str, name: str, **labels: str) -> float | None:
    return scrape(url).get((name, frozenset(labels.items())))


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    ready_path: str
    log: Path
    port: int
    stopped: bool = False  # stopped on purpose: not waited for


class Stack:
    """A redis-server plus target services, all stopped by :meth:`stop_all`."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.services: list[Service] = []
        self.redis_port = free_port()
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.redis_data = tmp_path / "redis-data"  # kept across restarts, like the harness's
        self.ledger = tmp_path / "ledger" / "ledger.jsonl"

    @property
    def redis_addr(self) -> str:
        return f"127.0.0.1:{self.redis_port}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, decode_responses=True, socket_timeout=2)

    def start_redis(self, appendonly: str = "no") -> redis.Redis:
        """Start redis-server on the stack's port, with the broker options of the topology."""
        self.redis_data.mkdir(exist_ok=True)
        cmd = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", appendonly, "--appendfsync", "always"]
        cmd += ["--dir", str(self.redis_data)]
        log = (self.tmp / "redis.log").open("ab")
        self.redis_proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        client = self.client()
        wait_until(client.ping, what="redis-server")
        return client

    def stop_redis(self, kill: bool = False) -> None:
        if self.redis_proc is not None:
            if kill:
                self.redis_proc.kill()
            _stop(self.redis_proc)
            self.redis_proc = None

    def start(self, name: str, port: int | None = None, **env: str) -> Service:
        """Start the reference service ``<name>.py`` on a free port (not waiting for it)."""
        port = port or free_port()
        http = name in HTTP_SERVICES
        full_env = {
            **os.environ,
            "REDIS_ADDR": self.redis_addr,
            "LEDGER_FILE": str(self.ledger),
            "DEAD_LETTER_FILE": str(self.tmp / "dead_lettered.jsonl"),
            "PORT" if http else "METRICS_PORT": str(port),
            **env,
        }
        log = self.tmp / f"{name}-{len(self.services)}.log"
        folder = "services" if name in SHARED else "redis_streams"
        proc = subprocess.Popen(
            [sys.executable, str(TARGETS / folder / f"{name}.py")],
            env=full_env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        service = Service(name, proc, url, "/healthz" if http else "/metrics", log, port)
        self.services.append(service)
        return service

    def stop(self, service: Service, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) one service and wait for it to exit."""
        service.stopped = True
        if kill:
            service.proc.kill()
        _stop(service.proc)

    def wait_ready(self) -> None:
        for service in self.services:
            if service.stopped:
                continue

            def ready(s: Service = service) -> bool:
                if s.proc.poll() is not None:
                    raise AssertionError(f"{s.name} exited: {s.log.read_text()}")
                return httpx.get(s.url + s.ready_path, timeout=1).status_code == 200

            wait_until(ready, what=f"{service.name} to answer")

    def ledger_ids(self, applied: bool = True) -> list[str]:
        """The ids of the sink's ledger lines, in order: the processings (the effects
        applied), or with ``applied=False`` the deliveries that applied nothing."""
        if not self.ledger.exists():
            return []
        lines = [json.loads(line) for line in self.ledger.read_text().splitlines()]
        return [line["id"] for line in lines if line.get("applied", True) is applied]

    def stop_all(self) -> None:
        for service in self.services:
            _stop(service.proc)
        self.stop_redis()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(3)


def post_jobs(api: Service, ids: list[str]) -> None:
    with httpx.Client(base_url=api.url, timeout=5) as http:
        for job_id in ids:
            answer = http.post("/jobs", json={"id": job_id, "payload": {"n": job_id}})
            assert answer.status_code == 202, answer.text
            assert answer.json()["id"] == job_id


def enqueue_directly(client: redis.Redis, ids: list[str], **extra: str) -> None:
    for job_id in ids:
        fields = {"id": job_id, "enqueued_at": repr(time.time()), "payload": "null", **extra}
        client.xadd("jobs", fields)  # type: ignore[arg-type]
