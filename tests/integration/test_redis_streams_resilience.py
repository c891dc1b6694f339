"""The protections of the Redis Streams reference target, each shown on and then switched off.

Each test starts its own redis-server and the services it needs as real processes; the switches
are the environment variables documented in targets/redis-streams.yaml.
"""

from __future__ import annotations

import hashlib
import json
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
    pytest.mark.timeout(30),
]


def pending(stack: Stack, stream: str = "jobs", group: str = "workers") -> int:
    return int(stack.client().xpending(stream, group)["pending"])


def notified(service_url: str) -> list[str]:
    return list(httpx.get(f"{service_url}/notifications", timeout=2).json()["ids"])


def kill_a_worker_mid_batch(stack: Stack, ack_mode: str, **sink_env: str) -> tuple[list, int]:
    """Ten jobs, one batch; the worker is killed -9 after it posted two or three of them.
    Returns the job ids and how many effects it applied before it died."""
    client = stack.start_redis()
    ids = [f"m{i}" for i in range(10)]
    enqueue_directly(client, ids)
    sink = stack.start("sink", **sink_env)
    stack.wait_ready()
    doomed = stack.start("worker", SINK_URL=sink.url, PROCESS_MS="300", ACK_MODE=ack_mode)
    wait_until(lambda: len(stack.ledger_ids()) >= 2, what="two effects applied")
    stack.stop(doomed, kill=True)
    return ids, len(stack.ledger_ids())


# ------------------------------------------------------- acknowledge after / before processing


@pytest.mark.parametrize("idempotent", ["1", "0"], ids=["idempotent", "not-idempotent"])
def test_ack_after_processing_redelivers_a_dead_workers_batch(
    stack: Stack, idempotent: str
) -> None:
    ids, applied = kill_a_worker_mid_batch(stack, "after", IDEMPOTENT=idempotent)
    assert pending(stack) == 10  # nothing of the batch was acknowledged
    sink = stack.services[0]
    worker = stack.start("worker", SINK_URL=sink.url, PROCESS_MS="1", CLAIM_IDLE_MS="500")

    wait_until(lambda: set(stack.ledger_ids()) == set(ids), what="every id in the sink")
    wait_until(lambda: pending(stack) == 0, what="the claimed batch acknowledged")
    assert metric(worker.url, "harness_messages_retried_total", **Q) == 10
    # The effects applied before the kill were delivered again; only the idempotent sink
    # absorbs them, and both count them.
    assert metric(sink.url, "harness_duplicates_total", **Q) == applied
    duplicated = {i: n for i, n in Counter(stack.ledger_ids()).items() if n > 1}
    if idempotent == "1":
        assert duplicated == {}
        assert metric(sink.url, "harness_messages_processed_total", **Q) == 10
        # The absorbed redeliveries are in the ledger still, as deliveries that applied nothing.
        assert len(stack.ledger_ids(applied=False)) == applied
    else:
        assert len(duplicated) == applied and set(duplicated.values()) == {2}
        assert metric(sink.url, "harness_messages_processed_total", **Q) == 10 + applied


def test_ack_before_processing_loses_the_rest_of_a_dead_workers_batch(stack: Stack) -> None:
    ids, applied = kill_a_worker_mid_batch(stack, "before")
    assert pending(stack) == 0  # acknowledged on reading: nothing left to claim
    sink = stack.services[0]
    worker = stack.start("worker", SINK_URL=sink.url, PROCESS_MS="1", CLAIM_IDLE_MS="300")
    stack.wait_ready()
    time.sleep(1)  # several claim scans

    assert stack.ledger_ids() == ids[:applied]
    assert metric(worker.url, "harness_messages_retried_total", **Q) == 0
    group = stack.client().xinfo_groups("jobs")[0]
    assert (group["pending"], group["lag"]) == (0, 0)  # nothing will ever deliver the rest


@pytest.mark.parametrize("claim_idle_ms", ["300", "0"], ids=["claims", "no-claims"])
def test_claims_recover_what_a_dead_consumer_left_pending(stack: Stack, claim_idle_ms: str) -> None:
    client = stack.start_redis()
    ids = [f"c{i}" for i in range(5)]
    enqueue_directly(client, ids)
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "ghost", {"jobs": ">"}, count=3)  # never acknowledged
    sink = stack.start("sink")
    stack.wait_ready()
    worker = stack.start("worker", SINK_URL=sink.url, PROCESS_MS="1", CLAIM_IDLE_MS=claim_idle_ms)
    stack.wait_ready()

    wait_until(lambda: set(ids[3:]) <= set(stack.ledger_ids()), what="the new messages")
    if claim_idle_ms == "0":
        time.sleep(1)
        assert sorted(stack.ledger_ids()) == ids[3:]
        assert pending(stack) == 3
        assert metric(worker.url, "harness_messages_retried_total", **Q) == 0
    else:
        wait_until(lambda: sorted(stack.ledger_ids()) == ids, what="the claimed messages")
        wait_until(lambda: pending(stack) == 0, what="acks")
        assert metric(worker.url, "harness_messages_retried_total", **Q) == 3


# ------------------------------------------------------------- retries, backoff, dead letters


def poison_ids(ids: list[str], percent: float) -> list[str]:
    """The api's rule, written again: the test checks it rather than reusing it."""
    return [
        i
        for i in ids
        if int(hashlib.sha256(i.encode()).hexdigest()[:8], 16) % 10000 < percent * 100
    ]


def test_poison_is_retried_with_growing_delays_then_dead_lettered(stack: Stack) -> None:
    client = stack.start_redis()
    sink = stack.start("sink")
    worker = stack.start(
        "worker", SINK_URL=sink.url, PROCESS_MS="1", RETRY_BASE_MS="300", MAX_ATTEMPTS="4"
    )
    probe = stack.start("probe")
    api = stack.start("api", POISON_PERCENT="20")
    stack.wait_ready()
    ids = [f"job-{i}" for i in range(20)]
    poison = poison_ids(ids, 20)
    assert 0 < len(poison) < len(ids)  # the hash spreads these ids so (checked once, fixed)
    post_jobs(api, ids)
    first = {f["id"]: f for _, f in client.xrange("jobs") if "attempt" not in f}
    assert sorted(i for i, f in first.items() if f.get("poison") == "1") == sorted(poison)

    # Watch the delayed set: each retry's due time minus when it was first seen is its delay.
    delays: dict[tuple[str, int], float] = {}
    deadline = time.monotonic() + 8
    while client.xlen("jobs:dlq") < len(poison) and time.monotonic() < deadline:
        now = time.time()
        for member, due in client.zrange("jobs:delayed", 0, -1, withscores=True):
            fields = json.loads(member)
            delays.setdefault((fields["id"], int(fields["attempt"])), due - now)
        time.sleep(0.01)
    for job_id in poison:  # the delay before attempt n: 300 ms * 2^(n-2), times 0.5..1.0
        for attempt, nominal in ((2, 0.3), (3, 0.6), (4, 1.2)):
            delay = delays[(job_id, attempt)]
            assert nominal * 0.5 - 0.05 <= delay <= nominal + 0.01, (job_id, attempt, delay)

    dead = {f["id"]: f for _, f in client.xrange("jobs:dlq")}
    assert sorted(dead) == sorted(poison)
    assert {(f["attempts"], f["error"], f["poison"]) for f in dead.values()} == {
        ("4", "poison message", "1")
    }
    wait_until(lambda: sorted(stack.ledger_ids()) == sorted(set(ids) - set(poison)))
    # Each failed attempt is in the ledger as a delivery that applied nothing: four a poison job.
    attempts = dict.fromkeys(poison, 4)
    wait_until(lambda: Counter(stack.ledger_ids(applied=False)) == attempts, what="the attempts")
    # The sink was told of each dead letter once, for the ledger's dead_lettered place.
    assert httpx.get(f"{sink.url}/dead_lettered").json() == dict.fromkeys(poison, 1)
    m = scrape(worker.url)
    assert m[("harness_messages_failed_total", frozenset(Q.items()))] == 4 * len(poison)
    assert m[("harness_messages_retried_total", frozenset(Q.items()))] == 3 * len(poison)
    assert m[("harness_dlq_messages_total", frozenset(Q.items()))] == len(poison)
    assert metric(api.url, "harness_poison_produced_total", **Q) == len(poison)
    assert metric(probe.url, "harness_dlq_depth", **Q) == len(poison)
    assert metric(probe.url, "harness_queue_delayed", **Q) == 0
    wait_until(lambda: pending(stack) == 0, what="every attempt acknowledged")


def test_without_a_dlq_poison_is_retried_forever(stack: Stack) -> None:
    client = stack.start_redis()
    enqueue_directly(client, ["bad"], poison="1")
    enqueue_directly(client, ["good"])
    sink = stack.start("sink")
    stack.wait_ready()  # else "good" may fail at the sink and wait for a claim
    worker = stack.start(
        "worker",
        SINK_URL=sink.url,
        PROCESS_MS="1",
        DLQ="0",
        MAX_ATTEMPTS="2",
        RETRY_BASE_MS="40",
        RETRY_MAX_MS="120",
    )
    probe = stack.start("probe")
    stack.wait_ready()

    wait_until(
        lambda: metric(worker.url, "harness_messages_failed_total", **Q) >= 8,
        what="eight failed attempts",
    )
    assert stack.ledger_ids() == ["good"]
    assert client.xlen("jobs:dlq") == 0
    assert metric(worker.url, "harness_dlq_messages_total", **Q) == 0
    attempts = [int(f.get("attempt", 1)) for _, f in client.xrange("jobs") if f["id"] == "bad"]
    assert max(attempts) >= 8  # far past MAX_ATTEMPTS, and still going
    m = scrape(probe.url)
    waiting = sum(
        m[(name, frozenset(Q.items()))]
        for name in ("harness_queue_depth", "harness_queue_inflight", "harness_queue_delayed")
    )
    assert waiting == 1  # the backlog never drains


# ------------------------------------------------------------------------------ back-pressure


@pytest.mark.parametrize("max_backlog", ["20", "0"], ids=["limit", "no-limit"])
def test_backpressure_refuses_with_429_only_when_limited(stack: Stack, max_backlog: str) -> None:
    stack.start_redis()
    api = stack.start("api", MAX_BACKLOG=max_backlog)
    stack.wait_ready()
    with httpx.Client(base_url=api.url, timeout=5) as http:
        statuses = Counter(http.post("/jobs", json={}).status_code for _ in range(60))
        time.sleep(0.25)  # past the backlog cache
        statuses[http.post("/jobs", json={}).status_code] += 1
    rejections = metric(api.url, "harness_backpressure_rejections_total", **Q)
    if max_backlog == "0":
        assert statuses == {202: 61} and rejections == 0
    else:
        assert statuses[202] >= 20 and statuses[429] >= 1 and rejections == statuses[429]


# ----------------------------------------------------------------------- notifications


def test_outbox_keeps_the_api_up_while_the_notifier_is_down(stack: Stack) -> None:
    client = stack.start_redis()
    state = str(stack.tmp / "notifier" / "notified.txt")  # kept across its restart
    notifier = stack.start("notifier", STATE_FILE=state)
    relay = stack.start("relay", NOTIFIER_URL=notifier.url)
    api = stack.start("api", NOTIFY_MODE="outbox")
    probe = stack.start("probe")
    stack.wait_ready()
    post_jobs(api, ["a", "b"])
    wait_until(lambda: notified(notifier.url) == ["a", "b"], what="two notifications")

    stack.stop(notifier)
    post_jobs(api, ["c", "d", "e"])  # every one 202
    assert client.xlen("notifications") == 5
    assert metric(api.url, "harness_notifications_enqueued_total", **Q) == 5
    labels = {"queue": "notifications"}  # the relay's and the probe's: the stream they read
    wait_until(lambda: metric(relay.url, "harness_relay_failures_total", **labels))

    notifier = stack.start("notifier", port=notifier.port, STATE_FILE=state)
    wait_until(lambda: len(notified(notifier.url)) == 5, what="the notifications owed")
    assert notified(notifier.url) == ["a", "b", "c", "d", "e"]
    assert metric(notifier.url, "harness_notifications_received_total", **Q) == 5  # caught up
    wait_until(lambda: pending(stack, "notifications", "relay") == 0, what="relay's acks")
    assert metric(probe.url, "harness_consumer_lag", group="relay", **labels) == 0


def test_sync_notification_fails_the_api_while_the_notifier_is_down(stack: Stack) -> None:
    client = stack.start_redis()
    notifier = stack.start("notifier")
    api = stack.start("api", NOTIFY_MODE="sync", NOTIFIER_URL=notifier.url)
    stack.wait_ready()
    post_jobs(api, ["a"])
    assert notified(notifier.url) == ["a"]

    stack.stop(notifier)
    answer = httpx.post(f"{api.url}/jobs", json={"id": "b"}, timeout=5)
    assert answer.status_code == 503 and answer.json()["error"].startswith("notifier:")
    assert [f["id"] for _, f in client.xrange("jobs")] == ["a", "b"]  # enqueued all the same
    assert metric(api.url, "harness_notify_errors_total", **Q) == 1

    notifier = stack.start("notifier", port=notifier.port)
    stack.wait_ready()
    post_jobs(api, ["c"])
    assert notified(notifier.url) == ["c"]  # b's notification is lost for good
    assert metric(api.url, "harness_notifications_enqueued_total", **Q) == 3
    assert not client.exists("notifications")


def test_notify_off_sends_nothing(stack: Stack) -> None:
    client = stack.start_redis()
    api = stack.start("api", NOTIFY_MODE="off")
    stack.wait_ready()
    post_jobs(api, ["a"])
    assert not client.exists("notifications")
    assert metric(api.url, "harness_notifications_enqueued_total", **Q) == 0


# ---------------------------------------------------------------------- broker persistence


@pytest.mark.parametrize("appendonly", ["yes", "no"])
def test_broker_restart_keeps_the_stream_only_with_appendonly(
    stack: Stack, appendonly: str
) -> None:
    stack.start_redis(appendonly)
    sink = stack.start("sink")
    notifier = stack.start("notifier")
    stack.start("worker", SINK_URL=sink.url, PROCESS_MS="1")
    stack.start("relay", NOTIFIER_URL=notifier.url)
    api = stack.start("api")
    stack.wait_ready()
    post_jobs(api, ["before"])
    wait_until(lambda: stack.ledger_ids() == ["before"], what="first job")
    wait_until(lambda: pending(stack) == 0, what="first job acknowledged")

    stack.stop_redis(kill=True)
    assert httpx.post(f"{api.url}/jobs", json={"id": "during"}, timeout=5).status_code == 503
    client = stack.start_redis(appendonly)
    if appendonly == "yes":
        assert client.xlen("jobs") == 1 and client.xlen("notifications") == 1
        assert [g["name"] for g in client.xinfo_groups("jobs")] == ["workers"]
    else:
        assert client.dbsize() == 0

    wait_until(
        lambda: httpx.post(f"{api.url}/jobs", json={"id": "after"}).status_code == 202,
        what="api to accept again",
    )
    wait_until(lambda: stack.ledger_ids() == ["before", "after"], what="job after the restart")
    wait_until(lambda: notified(notifier.url) == ["before", "after"], what="its notification")


# ------------------------------------------------------------------------------------ probe


def test_probe_watches_every_queue_with_its_retries_and_dead_letters(stack: Stack) -> None:
    client = stack.start_redis()
    enqueue_directly(client, ["a", "b", "c"])
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "someone", {"jobs": ">"}, count=1)
    client.zadd("jobs:delayed", {'{"id": "x", "attempt": "2"}': 1, '{"id": "y"}': 2})
    client.xadd("jobs:dlq", {"id": "z", "attempts": "4", "error": "poison message"})
    client.xadd("notifications", {"id": "a"})
    client.xadd("notifications", {"id": "b"})
    client.xgroup_create("notifications", "relay", id="0")
    probe = stack.start("probe")
    only_jobs = stack.start("probe", QUEUES="jobs:workers")
    stack.wait_ready()

    m = scrape(probe.url)

    def gauge(name: str, queue: str) -> float:
        return m[(name, frozenset({"queue": queue}.items()))]

    names = ("queue_depth", "queue_inflight", "queue_delayed", "dlq_depth", "stream_length")
    jobs = {n: gauge(f"harness_{n}", "jobs") for n in names}
    assert jobs == {
        "queue_depth": 2,
        "queue_inflight": 1,
        "queue_delayed": 2,
        "dlq_depth": 1,
        "stream_length": 3,
    }
    assert gauge("harness_queue_depth", "notifications") == 2
    assert gauge("harness_queue_delayed", "notifications") == 0
    assert (
        m[("harness_consumer_lag", frozenset({"queue": "jobs", "group": "workers"}.items()))] == 3
    )
    lag = ("harness_consumer_lag", frozenset({"queue": "notifications", "group": "relay"}.items()))
    assert m[lag] == 2
    assert gauge("harness_oldest_message_age_seconds", "notifications") > 0
    assert m[("harness_probe_broker_up", frozenset())] == 1
    assert {labels for name, labels in scrape(only_jobs.url) if name == "harness_queue_depth"} == {
        frozenset(Q.items())
    }
