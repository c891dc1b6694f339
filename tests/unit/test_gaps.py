"""Scrape gaps: found in hand-written ``up`` series, and what they do to the checks that read them.

Prometheus answers are hand-written JSON through ``httpx.MockTransport``; the test that kills
the real probe mid-run is in tests/integration/test_run.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx

from harness.checks import CheckResult, Evidence, LedgerCheck, ThresholdCheck, evaluate
from harness.journal import EventLog, Outcome
from harness.observe.gaps import Gap, find_gaps, meant_down, saturation_gaps
from harness.observe.promql import PromQL
from harness.verdict import Verdict
from tests.unit.test_checks import MOMENTS, T0, FakePrometheus, vector

PROBE_METRICS = ["harness_queue_depth", "harness_queue_inflight", "up"]
LOAD_METRICS = ["harness_load_requests_total", "harness_load_request_duration_seconds_bucket"]


def prometheus(up: dict[str, list[int]]) -> PromQL:
    """``up`` of each instance, one value a second from T0; the probe exports queue gauges."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/__name__/values"):
            return httpx.Response(200, json={"status": "success", "data": PROBE_METRICS})
        result = [
            {
                "metric": {"instance_name": name},
                "values": [[T0 + i, str(v)] for i, v in enumerate(vs)],
            }
            for name, vs in up.items()
        ]
        data = {"resultType": "matrix", "result": result}
        return httpx.Response(200, json={"status": "success", "data": data})

    return PromQL("http://prom.test", transport=httpx.MockTransport(answer))


def test_three_failed_scrapes_in_a_row_are_a_gap_one_is_not() -> None:
    up = {"probe": [1, 1, 0, 0, 0, 1, 1, 0, 1], "api": [1, 0, 1, 1, 1, 1, 1, 1, 1]}
    [gap] = find_gaps(prometheus(up), T0, T0 + 9, {})
    assert (gap.instance, gap.start - T0, gap.end - T0) == ("probe", 2, 4)
    assert gap.metrics == {"harness_queue_depth", "harness_queue_inflight"}


def test_downtime_a_fault_caused_is_excused() -> None:
    up = {"worker-0": [1, 0, 0, 0, 0, 1], "load": [1, 1, 0, 0, 0, 0]}
    excused = {"worker-0": [(T0 + 1, T0 + 5)], "load": [(T0 + 2, float("inf"))]}
    assert find_gaps(prometheus(up), T0, T0 + 6, excused) == []
    assert [g.instance for g in find_gaps(prometheus(up), T0, T0 + 6, {})] == ["worker-0", "load"]


GAP = Gap("probe", T0 + 20, T0 + 38, frozenset({"harness_queue_depth"}))


def judged_with_the_gap(query: str) -> tuple[CheckResult, FakePrometheus]:
    """A threshold check on ``query``, judged by a Prometheus that answers 812, beside GAP."""
    fake = FakePrometheus(vector(({}, "812")))
    promql = PromQL("http://prom.test", transport=httpx.MockTransport(fake))
    check = ThresholdCheck.model_validate(
        {"name": "b", "query": query, "at": "fault.end", "expect": "> 500"}
    )
    return evaluate(check, Evidence(promql, MOMENTS, None, gaps=[GAP])), fake


def test_a_check_that_reads_a_metric_with_a_gap_is_inconclusive_without_a_query() -> None:
    result, fake = judged_with_the_gap('sum(harness_queue_depth{queue="jobs"})')
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.observed == (
        "probe was not scraped (down or not answering) from +20s to +38s, "
        "and this check reads its harness_queue_depth"
    )
    assert fake.requests == []


def test_a_gap_leaves_checks_on_other_metrics_alone() -> None:
    result, _ = judged_with_the_gap("sum(harness_queue_depth_total)")
    assert result.verdict is Verdict.HELD
    ledger = LedgerCheck.model_validate({"name": "l", "ledger": "lost", "expect": "== 0"})
    assert "scraped" not in evaluate(ledger, Evidence(None, MOMENTS, None, gaps=[GAP])).observed


def test_meant_down_spans_each_fault_on_replicas_until_its_heal(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    value: dict[str, Any] = {"label": "crash", "occurrence": 1, "replicas": ["worker-1"]}
    log.now("fault.apply", "worker", Outcome.OK, T0 + 10, **value)
    heal = log.now("fault.heal", "worker", Outcome.OK, T0 + 20, **value)
    log.now("fault.apply", "worker", Outcome.OK, T0 + 30, **(value | {"occurrence": 2}))
    log.now("fault.apply", "api->broker", Outcome.OK, T0 + 40, label="cut", occurrence=1)
    log.close()
    windows = meant_down(log.events, {"load.end": T0 + 60}, 3.0)
    assert windows == {
        "worker-1": [(T0 + 10, heal.t_complete + 3.0), (T0 + 30, math.inf)],
        "load": [(T0 + 60, math.inf)],
    }


def test_a_saturated_load_generator_spoils_only_its_latency() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "success", "data": LOAD_METRICS})

    promql = PromQL("http://prom.test", transport=httpx.MockTransport(answer))
    [gap] = saturation_gaps(promql, [(T0 + 5, T0 + 9)], T0, T0 + 60)
    assert gap.metrics == {"harness_load_request_duration_seconds_bucket"}
    query = "histogram_quantile(0.95, rate(harness_load_request_duration_seconds_bucket[5s]))"
    latency = ThresholdCheck.model_validate(
        {"name": "p95", "at": "load.end", "expect": "< 1", "query": query}
    )
    result = evaluate(latency, Evidence(promql, MOMENTS, None, gaps=[gap]))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.observed.startswith("load used over 90 % of a core (its latency includes its")
