"""Checks judged on hand-written evidence.

Prometheus answers are hand-written JSON served through ``httpx.MockTransport``: these tests
cover parsing the answer and judging it, and do not claim to test Prometheus.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import httpx
import pytest

from harness.checks import (
    Evidence,
    LedgerCheck,
    RecoveryCheck,
    SometimesCheck,
    ThresholdCheck,
    WindowCheck,
    evaluate,
)
from harness.checks.promql import recovery_time
from harness.judge import steady_state_checks
from harness.ledger import LedgerSummary, summarize
from harness.ledger.files import SendOutcome
from harness.observe.promql import PromQL, Series
from harness.spec import SteadyState
from harness.units import Expectation, Moment
from harness.verdict import Verdict

T0 = 1_700_000_000.0  # load.start
OK, FAIL = SendOutcome.OK, SendOutcome.FAIL
MOMENTS = {
    "start": T0 - 10,
    "load.start": T0,
    "fault.start": T0 + 15,
    "fault.end": T0 + 35,
    "load.end": T0 + 60,
    "end": T0 + 90,
}


class FakePrometheus:
    """Answers every request with one hand-written body and remembers the requests."""

    def __init__(self, body: dict[str, Any], status: int = 200) -> None:
        self.body = body
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    @property
    def params(self) -> dict[str, str]:
        [request] = self.requests
        return dict(request.url.params)


def vector(*samples: tuple[dict[str, str], str]) -> dict[str, Any]:
    result = [{"metric": labels, "value": [T0, value]} for labels, value in samples]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> dict[str, Any]:
    result = [
        {"metric": labels, "values": [[t, v] for t, v in points]} for labels, points in series
    ]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def evidence(
    prometheus: FakePrometheus,
    moments: dict[str, float] = MOMENTS,
    lacks: dict[str, str] | None = None,
) -> Evidence:
    promql = PromQL("http://prom.test", transport=httpx.MockTransport(prometheus))
    return Evidence(promql=promql, moments=moments, ledger=None, lacks=lacks or {})


THRESHOLD = ThresholdCheck.model_validate(
    {"name": "backlog builds", "query": "sum(q)", "at": "fault.end", "expect": "> 500"}
)
WINDOW = WindowCheck.model_validate(
    {"name": "p95 low", "query": "p95", "from": "load.start", "to": "load.end", "expect": "< 5"}
)
RECOVERY = RecoveryCheck.model_validate(
    {"name": "drains", "recovers": "sum(q) + sum(r) < 50", "after": "fault.end", "within": "20s"}
)


# --------------------------------------------------------------- threshold


def test_threshold_holds_and_queries_at_the_moment() -> None:
    prometheus = FakePrometheus(vector(({}, "812")))
    result = evaluate(THRESHOLD, evidence(prometheus))
    assert (result.name, result.kind) == ("backlog builds", "threshold")
    assert result.verdict is Verdict.HELD
    assert (result.expected, result.observed) == ("> 500 at fault.end", "812")
    assert prometheus.requests[0].url.path == "/api/v1/query"
    assert prometheus.params == {"query": "sum(q)", "time": "1700000035.000"}


def test_threshold_fails_showing_the_failing_series() -> None:
    prometheus = FakePrometheus(vector(({"queue": "a"}, "900"), ({"queue": "jobs"}, "12")))
    result = evaluate(THRESHOLD, evidence(prometheus))
    assert result.verdict is Verdict.FAILED
    assert result.observed == '{queue="jobs"}12'


def test_threshold_at_an_offset_queries_the_offset_time() -> None:
    check = THRESHOLD.model_copy(update={"at": Moment.parse("fault.end+10s")})
    prometheus = FakePrometheus(vector(({}, "812")))
    evaluate(check, evidence(prometheus))
    assert prometheus.params["time"] == "1700000045.000"


def test_a_scalar_answer_is_one_sample() -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [T0, "600"]}}
    assert evaluate(THRESHOLD, evidence(FakePrometheus(body))).verdict is Verdict.HELD


ERROR = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}


@pytest.mark.parametrize(
    ("prometheus", "observed"),
    [
        pytest.param(FakePrometheus(vector()), "no data at fault.end", id="empty"),
        pytest.param(FakePrometheus(vector(({}, "NaN"))), "no data at fault.end", id="nan"),
        pytest.param(
            FakePrometheus(ERROR, status=400),
            "Prometheus: bad_data: parse error at char 5",
            id="prometheus-error",
        ),
        pytest.param(
            FakePrometheus(matrix(({}, [(T0, "1")]))),
            "query 'sum(q)' returned a matrix; expected a number or a vector",
            id="matrix-for-instant",
        ),
    ],
)
def test_no_usable_answer_is_inconclusive_never_held(
    prometheus: FakePrometheus, observed: str
) -> None:
    result = evaluate(THRESHOLD, evidence(prometheus))
    assert (result.verdict, result.observed) == (Verdict.INCONCLUSIVE, observed)
    assert result.expected == "> 500 at fault.end"  # the same words as when it is measured


def test_an_empty_window_is_inconclusive_without_a_query() -> None:
    check = WindowCheck.model_validate(
        {"name": "w", "query": "q", "from": "fault.end+10s", "to": "load.end", "expect": "< 5"}
    )
    moments = {"fault.end": T0 + 30, "load.end": T0 + 35}
    result = evaluate(check, Evidence(None, moments, None))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.observed == "the window is empty: fault.end+10s is not before load.end"
    assert result.expected == "< 5 from fault.end+10s to load.end"


def test_a_moment_that_never_happened_is_inconclusive_without_a_query() -> None:
    prometheus = FakePrometheus(vector(({}, "812")))
    moments = {k: v for k, v in MOMENTS.items() if not k.startswith("fault")}
    result = evaluate(THRESHOLD, evidence(prometheus, moments))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.observed == "fault.end never happened in this run"
    assert prometheus.requests == []


def test_no_prometheus_is_inconclusive() -> None:
    result = evaluate(THRESHOLD, Evidence(promql=None, moments=MOMENTS, ledger=None))
    assert (result.verdict, result.observed) == (
        Verdict.INCONCLUSIVE,
        "Prometheus was not available",
    )


@pytest.mark.parametrize("check", [THRESHOLD, RECOVERY], ids=["threshold", "recovery"])
def test_a_check_reading_a_metric_the_target_lacks_is_not_applicable_with_why(
    check: ThresholdCheck | RecoveryCheck,
) -> None:
    prometheus = FakePrometheus(vector(({}, "812")))
    lacks = {"q": "this broker cannot tell"}
    result = evaluate(check, evidence(prometheus, lacks=lacks))
    assert (result.verdict, result.observed) == (
        Verdict.NOT_APPLICABLE,
        "the target has no q: this broker cannot tell",
    )
    assert prometheus.requests == []


def test_a_lacked_metric_leaves_checks_that_do_not_read_it_alone() -> None:
    prometheus = FakePrometheus(vector(({}, "812")))
    lacks = {"qq": "a metric whose name starts the same is another metric"}
    result = evaluate(THRESHOLD, evidence(prometheus, lacks=lacks))
    assert result.verdict is Verdict.HELD


# ------------------------------------------------------------------ window


def test_window_holds_over_every_sample_and_queries_the_range() -> None:
    prometheus = FakePrometheus(matrix(({}, [(T0, "1"), (T0 + 1, "NaN"), (T0 + 2, "3")])))
    result = evaluate(WINDOW, evidence(prometheus))
    assert (result.kind, result.verdict) == ("window", Verdict.HELD)
    assert result.expected == "< 5 from load.start to load.end"
    assert result.observed == "1 to 3 over 2 samples"
    assert prometheus.requests[0].url.path == "/api/v1/query_range"
    assert prometheus.params == {
        "query": "p95",
        "start": "1700000000.000",
        "end": "1700000060.000",
        "step": "1s",
    }


def test_window_fails_naming_the_first_breach_and_the_worst_relative_to_load_start() -> None:
    points = [(T0 + 11, "1"), (T0 + 12, "7"), (T0 + 13, "9"), (T0 + 14, "8")]
    result = evaluate(WINDOW, evidence(FakePrometheus(matrix(({"le": "x"}, points)))))
    assert result.verdict is Verdict.FAILED
    assert result.observed == '{le="x"}7 at +12s, worst {le="x"}9 at +13s (3 of 4 samples breach)'


def test_a_window_whose_first_breach_is_its_worst_names_it_once() -> None:
    points = [(T0 + 11, "1"), (T0 + 12, "9"), (T0 + 13, "7")]
    result = evaluate(WINDOW, evidence(FakePrometheus(matrix(({}, points)))))
    assert result.observed == "9 at +12s (2 of 3 samples breach)"


def test_window_during_a_span_queries_its_start_and_end() -> None:
    check = WindowCheck.model_validate(
        {"name": "w", "query": "q", "during": "fault", "expect": "< 5"}
    )
    prometheus = FakePrometheus(matrix(({}, [(T0 + 20, "1")])))
    assert evaluate(check, evidence(prometheus)).verdict is Verdict.HELD
    assert (prometheus.params["start"], prometheus.params["end"]) == (
        "1700000015.000",
        "1700000035.000",
    )


def test_window_of_only_nan_points_is_inconclusive() -> None:
    prometheus = FakePrometheus(matrix(({}, [(T0, "NaN"), (T0 + 1, "NaN")])))
    result = evaluate(WINDOW, evidence(prometheus))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.observed == "no data from load.start to load.end"


# --------------------------------------------------------------- sometimes

SOMETIMES = SometimesCheck.model_validate(
    {"name": "backlog builds", "sometimes": "sum(q) > 500", "during": "fault"}
)


def test_sometimes_holds_at_the_first_sample_that_meets_the_condition() -> None:
    points = [(T0 + 16, "10"), (T0 + 20, "612"), (T0 + 21, "90"), (T0 + 25, "700")]
    prometheus = FakePrometheus(matrix(({}, points)))
    result = evaluate(SOMETIMES, evidence(prometheus))
    assert (result.kind, result.verdict) == ("sometimes", Verdict.HELD)
    assert result.expected == "sum(q) > 500 at least once from fault.start to fault.end"
    assert result.observed == "612 at +20s, peak 700 at +25s"
    assert prometheus.params["query"] == "sum(q)"
    assert (prometheus.params["start"], prometheus.params["end"]) == (
        "1700000015.000",
        "1700000035.000",
    )


def test_sometimes_fails_when_no_sample_of_any_series_meets_it_naming_the_nearest() -> None:
    series = (({"q": "a"}, [(T0 + 16, "10"), (T0 + 17, "480")]), ({"q": "b"}, [(T0 + 16, "3")]))
    result = evaluate(SOMETIMES, evidence(FakePrometheus(matrix(*series))))
    assert result.verdict is Verdict.FAILED
    assert result.observed == 'never, over 3 samples; nearest {q="a"}480 at +17s'


def test_sometimes_from_one_moment_to_another_and_without_data() -> None:
    check = SometimesCheck.model_validate(
        {"name": "s", "sometimes": "q >= 1", "from": "load.start", "to": "load.end"}
    )
    assert evaluate(check, evidence(FakePrometheus(matrix(({}, [(T0, "1")]))))).verdict is (
        Verdict.HELD
    )
    empty = evaluate(check, evidence(FakePrometheus(matrix())))
    assert (empty.verdict, empty.observed) == (
        Verdict.INCONCLUSIVE,
        "no data from load.start to load.end",
    )


# ---------------------------------------------------------------- recovery


def after_fault(*values: str) -> dict[str, Any]:
    return matrix(({}, [(T0 + 35 + i, v) for i, v in enumerate(values)]))


def test_recovery_holds_and_queries_from_after_to_end() -> None:
    prometheus = FakePrometheus(after_fault("900", "400", "40", "30"))
    result = evaluate(RECOVERY, evidence(prometheus))
    assert (result.kind, result.verdict) == ("recovery", Verdict.HELD)
    assert result.expected == "sum(q) + sum(r) < 50 within 20s of fault.end"
    assert result.observed == "recovered 2.0s after fault.end"
    assert prometheus.params == {
        "query": "sum(q) + sum(r)",
        "start": "1700000035.000",
        "end": "1700000090.000",
        "step": "1s",
    }


def test_recovery_that_breaks_again_counts_from_the_last_recovery() -> None:
    result = evaluate(RECOVERY, evidence(FakePrometheus(after_fault("900", "40", "600", "30"))))
    assert result.observed == "recovered 3.0s after fault.end"


def test_never_recovering_fails() -> None:
    result = evaluate(RECOVERY, evidence(FakePrometheus(after_fault("40", "900", "600"))))
    assert result.verdict is Verdict.FAILED
    assert result.observed == "never recovered; 600 at the end of the run"


def test_recovering_later_than_within_fails() -> None:
    check = RECOVERY.model_copy(update={"within": 2.0})
    result = evaluate(check, evidence(FakePrometheus(after_fault("900", "400", "300", "30"))))
    assert (result.verdict, result.observed) == (Verdict.FAILED, "recovered 3.0s after fault.end")


def test_recovery_without_data_is_inconclusive_describing_the_check() -> None:
    result = evaluate(RECOVERY, evidence(FakePrometheus(matrix())))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.expected == "sum(q) + sum(r) < 50 within 20s of fault.end"


BELOW_50 = Expectation("<", 50.0)


@pytest.mark.parametrize(
    ("series", "took"),
    [
        pytest.param([[(100, 10), (101, 90), (102, 10), (103, 10)]], 2.0, id="last-recovery"),
        pytest.param([[(100, 10), (101, 90)]], None, id="breaks-at-the-end"),
        pytest.param([[(98, 10), (99, 10), (100, 10)]], 0.0, id="held-before-after"),
        pytest.param(
            [[(100, 10), (101, 10), (102, 10)], [(100, 90), (101, 10), (102, 10)]],
            1.0,
            id="every-series-must-hold",
        ),
        pytest.param([], None, id="no-series"),
    ],
)
def test_recovery_time_is_from_after_to_the_last_recovery(
    series: list[list[tuple[float, float]]], took: float | None
) -> None:
    hand_made = [Series({"i": str(i)}, points) for i, points in enumerate(series)]
    assert recovery_time(hand_made, BELOW_50, after=100.0) == took


# ------------------------------------------------------------ steady state


def test_steady_state_is_checked_before_faults_and_after_recovery() -> None:
    steady = [SteadyState(name="backlog", query="sum(q)", expect=Expectation("<", 50.0))]
    checks = steady_state_checks(steady, has_faults=True)
    assert [(group, c.name, str(c.at)) for group, c in checks] == [
        ("steady state", "steady state before faults: backlog", "fault.start"),
        ("steady state", "steady state after recovery: backlog", "end"),
    ]
    assert all(c.query == "sum(q)" and str(c.expect) == "< 50" for _, c in checks)
    assert [str(c.at) for _, c in steady_state_checks(steady, has_faults=False)] == ["end"]


# ------------------------------------------------------------------ ledger


def judge(quantity: str, expect: str, ledger: LedgerSummary | None) -> tuple[str, ...]:
    check = LedgerCheck.model_validate({"name": "n", "ledger": quantity, "expect": expect})
    result = evaluate(check, Evidence(promql=None, moments={}, ledger=ledger))
    assert (result.kind, result.expected) == ("ledger", f"{quantity} {expect}")
    return result.verdict.value, result.observed


def test_ledger_check_holds() -> None:
    ledger = summarize({"m1": OK, "m2": OK}, Counter(["m1", "m2"]))
    assert judge("lost", "== 0", ledger) == ("held", "0")


def test_ledger_check_fails_with_examples() -> None:
    ledger = summarize({"m1": OK, "m2": OK, "m3": OK}, Counter(["m1"]))
    assert judge("lost", "== 0", ledger) == ("failed", "2 (e.g. m2, m3)")


@pytest.mark.parametrize(("expect", "verdict"), [("< 0.1", "held"), ("< 0.01", "failed")])
def test_ledger_check_of_a_rate(expect: str, verdict: str) -> None:
    ids = [f"m{i:02}" for i in range(20)]
    ledger = summarize(dict.fromkeys(ids, OK), Counter([*ids, "m07"]))
    assert judge("duplicate_rate", expect, ledger) == (verdict, "0.05")


@pytest.mark.parametrize(
    ("ledger", "observed"),
    [
        (summarize({"m1": FAIL}, Counter()), "no message was acknowledged"),
        (None, "no ledger was recorded"),
    ],
)
def test_ledger_check_without_acknowledged_messages_is_inconclusive(
    ledger: LedgerSummary | None, observed: str
) -> None:
    verdict, text = judge("lost", "== 0", ledger)
    assert verdict == "inconclusive"
    assert text.startswith(observed)


def test_an_order_check_without_keys_is_inconclusive_and_says_how_to_key() -> None:
    ledger = summarize({"m1": OK}, Counter(["m1"]))
    verdict, text = judge("reordered", "== 0", ledger)
    assert (verdict, text.split(":")[0]) == ("inconclusive", "no order to judge")
    assert "load.key" in text
    keyed = replace(ledger, reordered=3, examples={"reordered": ["m1"]})
    assert judge("reordered", "== 0", keyed) == ("failed", "3 (e.g. m1)")


def test_a_target_that_promises_exactly_once_is_judged_on_its_promise() -> None:
    from harness.judge import promised_checks
    from harness.topology import Output

    assert promised_checks(Output.model_validate({})) == []
    exactly = Output.model_validate({"promise": "exactly-once"})
    assert [(c.ledger, str(c.expect)) for c in promised_checks(exactly)] == [("duplicated", "== 0")]
    counted = Output.model_validate(
        {"promise": "exactly-once", "effects": {"source": "file", "path": "{run}/effects"}}
    )
    assert [c.ledger for c in promised_checks(counted)] == ["duplicated", "excess"]
    positioned = Output.model_validate(
        {
            "promise": "exactly-once",
            "positions": {
                "committed": {
                    "source": "kafka",
                    "url": "{addr:broker}",
                    "topic": "t",
                    "group": "g",
                },
                "processed": {"source": "file", "path": "{run}/partitions"},
            },
        }
    )
    assert [c.ledger for c in promised_checks(positioned)] == ["duplicated", "mismatched_positions"]
