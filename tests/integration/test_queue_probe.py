"""`harness probe redis` against a real redis-server: the backlog of Redis-list queues as the
metrics the drain and the checks read, and an honest 0 when Redis is gone."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.deploy.process import ManagedProcess, Readiness
from tests.conftest import harness_argv
from tests.integration.redis_streams_stack import Stack, free_port, metric, wait_until

pytestmark = [pytest.mark.integration]


@pytest.fixture
def probes() -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for process in started:
        process.stop()


def start_probe(stack: Stack, tmp_path: Path, unacked: str, started: list[ManagedProcess]) -> str:
    port = free_port()
    argv = harness_argv(
        "probe", "redis", "--url", f"redis://{stack.redis_addr}/0",
        "--queue", "jobs", "--queue", "mail", "--unacked", unacked, "--port", str(port),
    )  # fmt: skip
    process = ManagedProcess(f"probe-{len(started)}", argv, tmp_path / f"probe-{port}.log")
    started.append(process)
    process.start()
    process.wait_ready(15, Readiness(port, "/metrics"))
    return f"http://127.0.0.1:{port}"


def test_lists_and_unacknowledged_keys_become_depth_and_inflight(
    stack: Stack, tmp_path: Path, probes: list[ManagedProcess]
) -> None:
    client = stack.start_redis()
    client.rpush("jobs", "a", "b", "c")
    client.hset("unacked", mapping={"t1": "x", "t2": "y"})
    client.rpush("processing:worker-0", "d")
    client.rpush("processing:worker-1", "e", "f")
    celery = start_probe(stack, tmp_path, "unacked", probes)
    per_worker = start_probe(stack, tmp_path, "processing:*", probes)

    assert metric(celery, "harness_queue_depth", queue="jobs") == 3
    assert metric(celery, "harness_queue_depth", queue="mail") == 0
    assert metric(celery, "harness_queue_inflight", queue="jobs") == 2
    assert metric(per_worker, "harness_queue_inflight", queue="jobs") == 3
    assert metric(celery, "harness_probe_broker_up") == 1

    stack.stop_redis(kill=True)
    wait_until(lambda: metric(celery, "harness_probe_broker_up") == 0, what="broker down")
    assert metric(celery, "harness_queue_depth", queue="jobs") is None  # no stale backlog


def test_every_type_a_task_queue_keeps_its_unacknowledged_messages_in_is_counted(
    stack: Stack, tmp_path: Path, probes: list[ManagedProcess]
) -> None:
    client = stack.start_redis()
    client.hset("held:hash", mapping={"t1": "x", "t2": "y"})  # Celery
    client.rpush("held:list", "a")  # RQ-style, one list per worker
    client.sadd("held:set", "b", "c", "d")  # a set per worker
    client.zadd("held:zset", {"e": 1.0})  # by deadline
    client.xadd("held:stream", {"f": "1"})
    probe = start_probe(stack, tmp_path, "held:*", probes)
    assert metric(probe, "harness_queue_inflight", queue="jobs") == 2 + 1 + 3 + 1 + 1


def test_a_key_the_probe_cannot_count_gives_no_inflight_count_not_a_zero(
    stack: Stack, tmp_path: Path, probes: list[ManagedProcess]
) -> None:
    client = stack.start_redis()
    client.rpush("jobs", "a")
    client.set("unacked", "not a collection")
    probe = start_probe(stack, tmp_path, "unacked", probes)
    assert metric(probe, "harness_queue_depth", queue="jobs") == 1  # the rest is still read
    assert metric(probe, "harness_queue_inflight", queue="jobs") is None
    log = next(tmp_path.glob("probe-*.log")).read_text()
    assert "'unacked' is a Redis string" in log


def test_the_probe_needs_a_queue() -> None:
    result = subprocess.run(
        harness_argv("probe", "redis", "--url", "redis://x/0", "--port", "1"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 3 and "--queue" in result.stderr  # bad input


def test_a_probe_on_a_port_in_use_says_so_without_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            harness_argv("probe", "redis", "--url", "redis://127.0.0.1:1/0", "--queue", "jobs",
                         "--port", str(port)),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 2  # the environment: a port another process holds
    assert f"port 127.0.0.1:{port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
