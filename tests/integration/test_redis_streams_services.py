"""Integration tests of the Redis Streams reference target (targets/redis_streams/*.py).

Each test starts its own redis-server and the services it needs as real processes.
"""

from __future__ import annotations

import signal
import socket
import time
from collections import Counter

import httpx
import pytest

from tests.integration.redis_streams_stack import (
    Q,
    Stack,
    enqueue_directly,
    metric,
    post_jobs,
    scrape,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(60),
]


def test_every_job_reaches_the_sink_exactly_once(stack: Stack) -> None:
    stack.start_redis()
    sink = stack.start("sink")
    worker = stack.start("worker", SINK_URL=sink.url, PROCESS_MS="1")
    probe = stack.start("probe")
    api = stack.start("api")
    stack.wait_ready()
    ids = [f"job-{i}" for i in range(200)]
    post_jobs(api, ids)

    wait_until(lambda: len(stack.ledger_ids()) >= 200, what="200 ledger lines")
    assert Counter(stack.ledger_ids()) == Counter(ids)
    assert httpx.get(f"{sink.url}/ledger").json() == {"processed": dict.fromkeys(ids, 1)}
    assert metric(sink.url, "harness_messages_processed_total", **Q) == 200
    assert metric(sink.url, "harness_duplicates_total", **Q) == 0
    assert metric(sink.url, "harness_end_to_end_latency_seconds_count", **Q) == 200
    assert metric(api.url, "harness_messages_produced_total", **Q) == 200
    wait_until(lambda: metric(worker.url, "harness_worker_messages_total", **Q) == 200)

    def drained() -> bool:
        m = scrape(probe.url)
        return m[("harness_queue_depth", frozenset(Q.items()))] == 0 and (
            m[("harness_queue_inflight", frozenset(Q.items()))] == 0
        )

    wait_until(drained, what="probe to show an empty queue")
    assert metric(probe.url, "harness_stream_length", **Q) == 200
    assert metric(probe.url, "harness_oldest_message_age_seconds", **Q) == 0
    assert metric(probe.url, "harness_consumer_lag", queue="jobs", group="workers") == 0
    assert "api listening on http://127.0.0.1:" in api.log.read_text()


def test_probe_shows_the_backlog_without_workers(stack: Stack) -> None:
    client = stack.start_redis()
    probe = stack.start("probe")
    api = stack.start("api")
    stack.wait_ready()
    assert metric(probe.url, "harness_queue_depth", **Q) == 0  # no stream yet
    assert metric(probe.url, "harness_probe_broker_up") == 1
    post_jobs(api, [f"j{i}" for i in range(7)])
    time.sleep(0.05)

    m = scrape(probe.url)  # no group yet: everything is undelivered
    assert m[("harness_queue_depth", frozenset(Q.items()))] == 7
    assert m[("harness_queue_inflight", frozenset(Q.items()))] == 0
    assert m[("harness_stream_length", frozenset(Q.items()))] == 7
    assert m[("harness_oldest_message_age_seconds", frozenset(Q.items()))] > 0

    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "someone", {"jobs": ">"}, count=2)
    time.sleep(0.05)
    m = scrape(probe.url)
    assert m[("harness_queue_depth", frozenset(Q.items()))] == 5
    assert m[("harness_queue_inflight", frozenset(Q.items()))] == 2
    assert m[("harness_consumer_lag", frozenset({**Q, "group": "workers"}.items()))] == 7
    assert m[("harness_oldest_message_age_seconds", frozenset(Q.items()))] > 0


def test_message_left_pending_by_a_dead_consumer_is_claimed(stack: Stack) -> None:
    client = stack.start_redis()
    ids = [f"p{i}" for i in range(5)]
    enqueue_directly(client, ids)
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "ghost", {"jobs": ">"}, count=3)  # never acknowledged
    sink = stack.start("sink")
    stack.wait_ready()  # else the worker's first batch may fail (and be retried) too
    worker = stack.start("worker", SINK_URL=sink.url, CLAIM_IDLE_MS="1000", PROCESS_MS="1")
    probe = stack.start("probe")
    stack.wait_ready()

    wait_until(lambda: sorted(stack.ledger_ids()) == ids, what="all ids in the ledger")
    assert metric(worker.url, "harness_messages_retried_total", **Q) == 3
    assert metric(worker.url, "harness_messages_failed_total", **Q) == 0
    wait_until(lambda: metric(probe.url, "harness_queue_inflight", **Q) == 0, what="acks")
    assert Counter(stack.ledger_ids()) == Counter(ids)


def test_api_applies_backpressure_at_max_backlog(stack: Stack) -> None:
    client = stack.start_redis()
    api = stack.start("api", MAX_BACKLOG="5")
    stack.wait_ready()
    statuses: list[int] = []

    def rejected() -> bool:
        answer = httpx.post(f"{api.url}/jobs", json={"payload": 1})
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert answer.json() == {"error": "backpressure"}
        time.sleep(0.02)
        return answer.status_code == 429

    wait_until(rejected, timeout=5, what="a 429")
    assert set(statuses) == {202, 429}
    assert statuses.count(202) >= 5
    assert metric(api.url, "harness_backpressure_rejections_total", **Q) == 1
    time.sleep(0.25)  # past the backlog cache: still full
    assert httpx.post(f"{api.url}/jobs", json={}).status_code == 429
    assert metric(api.url, "harness_backpressure_rejections_total", **Q) == 2
    assert client.xlen("jobs") == statuses.count(202)
    assert httpx.post(f"{api.url}/jobs", content=b"{nope").status_code == 400


def test_services_survive_a_redis_outage(stack: Stack) -> None:
    stack.start_redis()
    sink = stack.start("sink")
    worker = stack.start("worker", SINK_URL=sink.url, PROCESS_MS="1")
    probe = stack.start("probe")
    api = stack.start("api")
    stack.wait_ready()
    post_jobs(api, ["before"])
    wait_until(lambda: stack.ledger_ids() == ["before"], what="first job")

    stack.stop_redis()
    answer = httpx.post(f"{api.url}/jobs", json={"id": "during"})
    assert answer.status_code == 503
    assert metric(api.url, "harness_api_errors_total", **Q) == 1
    m = scrape(probe.url)
    assert m[("harness_probe_broker_up", frozenset())] == 0
    assert ("harness_queue_depth", frozenset(Q.items())) not in m
    time.sleep(1)
    assert worker.proc.poll() is None

    stack.start_redis()  # same port, empty data set: the worker re-creates its group
    wait_until(lambda: metric(probe.url, "harness_probe_broker_up") == 1, what="probe up")
    wait_until(
        lambda: httpx.post(f"{api.url}/jobs", json={"id": "after"}).status_code == 202,
        what="api to accept again",
    )
    wait_until(lambda: stack.ledger_ids() == ["before", "after"], what="job after the outage")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_services_exit_promptly_on_signal(stack: Stack, sig: signal.Signals) -> None:
    stack.start_redis()
    sink = stack.start("sink")
    notifier = stack.start("notifier")
    stack.start("worker", SINK_URL=sink.url)
    stack.start("relay", NOTIFIER_URL=notifier.url)
    stack.start("probe")
    stack.start("api")
    stack.wait_ready()
    for service in stack.services:
        service.proc.send_signal(sig)
        assert service.proc.wait(5) == 0, service.log.read_text()
        assert " stopped" in service.log.read_text()


def test_sink_counts_a_ledger_left_by_a_previous_run(stack: Stack) -> None:
    stack.ledger.parent.mkdir(parents=True)
    stack.ledger.write_text('{"id": "a", "t": 1.0, "consumer": "w"}\n{"id": "b", "t"')  # torn
    sink = stack.start("sink", IDEMPOTENT="0")  # records the redelivery: it can be seen
    stack.wait_ready()
    assert httpx.get(f"{sink.url}/ledger").json() == {"processed": {"a": 1}}
    body = {"messages": [{"id": "a", "enqueued_at": time.time(), "consumer": "w"}]}
    assert httpx.post(f"{sink.url}/processed", json=body).json() == {"recorded": 1, "duplicates": 1}
    assert metric(sink.url, "harness_duplicates_total", **Q) == 1
    assert stack.ledger.read_text().splitlines()[-1].startswith('{"id": "a"')
    assert httpx.post(f"{sink.url}/processed", json={"messages": [{}]}).status_code == 400


def _exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes to a service and read until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _post(path: str, body: bytes, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path.encode(),
        len(body),
        extra,
        body,
    )


def test_api_answers_pipelined_requests_in_order_and_refuses_bad_ones(stack: Stack) -> None:
    stack.start_redis()
    api = stack.start("api")
    stack.wait_ready()
    pipelined = _post("/jobs", b'{"id": "first"}') + _post("/jobs", b'{"id": "second"}', True)
    answers = _exchange(api.port, pipelined)
    assert answers.count(b"HTTP/1.1 202 Accepted") == 2
    assert answers.index(b'"first"') < answers.index(b'"second"')
    assert b"connection: close" in answers

    assert _exchange(api.port, b"GET /jobs HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert _exchange(api.port, b"GET /elsewhere HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert _exchange(api.port, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400")
    huge = _exchange(api.port, _post("/jobs", b"[" + b"0," * (1 << 20) + b"0]", close=True))
    assert huge.startswith(b"HTTP/1.1 413")
    with httpx.Client(base_url=api.url) as http:  # keep-alive: one connection for all three
        assert [http.post("/jobs", json={"id": i}).status_code for i in "abc"] == [202] * 3
        assert http.get("/healthz").text == "ok"
        assert "harness_messages_produced_total" in http.get("/metrics").text
    assert metric(api.url, "harness_messages_produced_total", **Q) == 5


def test_api_enqueues_after_redis_forgets_its_script(stack: Stack) -> None:
    client = stack.start_redis()
    api = stack.start("api")
    stack.wait_ready()
    post_jobs(api, ["before"])
    client.script_flush()  # what a restarted Redis knows of scripts: nothing
    post_jobs(api, ["after"])
    assert [fields["id"] for _, fields in client.xrange("jobs")] == ["before", "after"]


def test_api_answers_a_request_hung_on_the_broker_when_stopped(stack: Stack) -> None:
    stack.start_redis()
    api = stack.start("api")
    stack.wait_ready()
    post_jobs(api, ["before"])
    assert stack.redis_proc is not None
    stack.redis_proc.send_signal(signal.SIGSTOP)  # the enqueue below hangs
    try:
        with socket.create_connection(("127.0.0.1", api.port), timeout=10) as conn:
            conn.sendall(_post("/jobs", b'{"id": "hung"}'))
            time.sleep(0.3)
            started = time.monotonic()
            api.proc.send_signal(signal.SIGTERM)
            answer = conn.recv(65536)
            assert answer.startswith(b"HTTP/1.1 503"), answer
            assert b"shutting down" in answer
        assert api.proc.wait(5) == 0
        assert time.monotonic() - started < 4  # the grace (1 s), not the broker's timeout
    finally:
        stack.redis_proc.send_signal(signal.SIGCONT)
