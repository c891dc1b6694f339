"""Abort conditions and the time limit: when they fire, and what they say."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from harness.abort import AbortWatch
from harness.errors import Aborted
from harness.observe.promql import PromQL
from harness.units import Condition


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def answering(*values: str | None) -> tuple[PromQL, list[httpx.Request]]:
    """A PromQL client whose Prometheus answers each query with the next value (None: no data)."""
    answers = list(values)
    requests: list[httpx.Request] = []

    def prometheus(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        value = answers.pop(0)
        result: list[dict[str, Any]] = (
            [] if value is None else [{"metric": {"queue": "jobs"}, "value": [1, value]}]
        )
        body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return httpx.Response(200, json=body)

    return PromQL("http://prom.test", transport=httpx.MockTransport(prometheus)), requests


def watch(promql: PromQL, clock: Clock, *conditions: str, limit: float = 60) -> AbortWatch:
    parsed = [Condition.parse(c) for c in conditions]
    return AbortWatch(parsed, promql, clock(), limit, interval_s=1.0, clock=clock)


def test_a_condition_that_holds_aborts_with_its_value() -> None:
    clock = Clock()
    promql, _ = answering("10", "60000")
    w = watch(promql, clock, "sum(harness_queue_depth) > 50000")
    w.check()
    clock.now += 1
    with pytest.raises(Aborted) as raised:
        w.check()
    assert raised.value.reason == (
        'abort_if sum(harness_queue_depth) > 50000 fired: 60000 for {queue="jobs"}'
    )
    assert raised.value.exit_code == 2


def test_conditions_are_queried_at_most_once_per_interval() -> None:
    clock = Clock()
    promql, requests = answering("1", "1")
    w = watch(promql, clock, "sum(q) > 5")
    for _ in range(10):
        w.check()
        clock.now += 0.1
    assert len(requests) == 1
    clock.now += 0.1
    w.check()
    assert len(requests) == 2


def test_no_data_does_not_abort() -> None:
    clock = Clock()
    promql, _ = answering(None)
    watch(promql, clock, "sum(q) > 5").check()


def test_the_time_limit_aborts_even_without_conditions() -> None:
    clock = Clock()
    promql, requests = answering()
    w = watch(promql, clock, limit=90)
    clock.now += 89.9
    w.check()
    clock.now += 0.1
    with pytest.raises(Aborted, match="passed its time limit of 90s"):
        w.check()
    assert requests == []


def test_a_condition_prometheus_refuses_aborts_at_the_first_check() -> None:
    def prometheus(request: httpx.Request) -> httpx.Response:
        body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
        return httpx.Response(400, json=body)

    promql = PromQL("http://prom.test", transport=httpx.MockTransport(prometheus))
    with pytest.raises(Aborted, match=r"abort_if sum\(q\) > > 5 cannot be evaluated"):
        watch(promql, Clock(), "sum(q) >> 5").check()


def test_prometheus_not_answering_does_not_abort() -> None:
    def prometheus(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    promql = PromQL("http://prom.test", transport=httpx.MockTransport(prometheus))
    watch(promql, Clock(), "sum(q) > 5").check()
