"""The value types an experiment is written in, parsed from the short text a person writes."""

from __future__ import annotations

import math

import pytest

from harness.units import (
    Condition,
    Expectation,
    Moment,
    format_duration,
    parse_duration,
    parse_rate,
)

# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (" 30 s ", 30.0),
        ("10", 10.0),
        ("0", 0.0),
        (5, 5.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_reads_units_and_bare_numbers_as_seconds(
    text: object, seconds: float
) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "", "thirty seconds", "1.5.2s", "s", None, "-5s"])
def test_parse_duration_rejects_text_that_is_not_a_duration(text: object) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 500ms, 30s or 2m"):
        parse_duration(text)


def test_parse_duration_rejects_a_negative_number() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(-5)


@pytest.mark.parametrize("value", [True, math.inf, math.nan])
def test_parse_duration_rejects_booleans_and_non_finite_numbers(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.5, "500ms"), (30.0, "30s"), (1.5, "1.5s"), (120.0, "120s")]
)
def test_format_duration_writes_what_parse_duration_reads(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# -------------------------------------------------------------------- rates


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("200/s", 200.0), ("600/m", 10.0), ("5 / s", 5.0), ("50", 50.0), (7, 7.0), (0.5, 0.5)],
)
def test_parse_rate_reads_per_second_and_per_minute(text: object, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("value", ["0", "0/s", "0/m", 0, 0.0])
def test_parse_rate_rejects_zero(value: object) -> None:
    with pytest.raises(ValueError, match="must be above zero"):
        parse_rate(value)


@pytest.mark.parametrize("value", ["200/h", "-5/s", "fast", "", True])
def test_parse_rate_rejects_text_that_is_not_a_rate(value: object) -> None:
    with pytest.raises(ValueError, match="expected a rate"):
        parse_rate(value)


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_parse_rate_rejects_non_finite_numbers(value: float) -> None:
    with pytest.raises(ValueError):
        parse_rate(value)


# ------------------------------------------------------------- expectations


@pytest.mark.parametrize(
    ("text", "holding", "breaking"),
    [
        ("< 50", [49.9, -1.0], [50.0, 51.0]),
        ("<= 50", [50.0, 49.0], [50.1]),
        ("> 500", [500.5], [500.0, 0.0]),
        (">= 0.5", [0.5, 1.0], [0.49]),
        ("== 0", [0.0], [1.0, -0.1]),
        ("!= 0", [1.0, -1.0], [0.0]),
    ],
)
def test_expectation_holds_for_every_operator(
    text: str, holding: list[float], breaking: list[float]
) -> None:
    expectation = Expectation.parse(text)
    assert all(expectation.holds(v) for v in holding)
    assert not any(expectation.holds(v) for v in breaking)


@pytest.mark.parametrize(
    ("text", "op", "bound", "shown"),
    [
        ("< 50", "<", 50.0, "< 50"),
        ("<=50", "<=", 50.0, "<= 50"),
        ("  >=  0.01 ", ">=", 0.01, ">= 0.01"),
        ("== -3", "==", -3.0, "== -3"),
        ("!= 1e3", "!=", 1000.0, "!= 1000"),
        ("> 2.5E-2", ">", 0.025, "> 0.025"),
    ],
)
def test_expectation_parses_operator_and_bound_and_prints_them(
    text: str, op: str, bound: float, shown: str
) -> None:
    expectation = Expectation.parse(text)
    assert (expectation.op, expectation.bound) == (op, bound)
    assert str(expectation) == shown


@pytest.mark.parametrize("text", ["", "50", "=< 50", "=> 50", "<> 1", "< abc", "<", "< 1.2.3"])
def test_expectation_rejects_bad_input_naming_the_operators(text: str) -> None:
    with pytest.raises(ValueError, match=r"operators: <=, >=, ==, !=, <, >"):
        Expectation.parse(text)


def test_expectation_parse_passes_an_expectation_through() -> None:
    expectation = Expectation("<", 1.0)
    assert Expectation.parse(expectation) is expectation


# --------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("text", "expr", "expectation"),
    [
        ("sum(x) + sum(y) < 50", "sum(x) + sum(y)", "< 50"),
        ("rate(x[1m]) > 0.5", "rate(x[1m])", "> 0.5"),
        ("harness_queue_depth<=-1e3", "harness_queue_depth", "<= -1000"),
        ('x{job!="a"} != 0', 'x{job!="a"}', "!= 0"),
        ("sum(x > 5) >= 3", "sum(x > 5)", ">= 3"),
        ("sum(x) < 50 > 3", "sum(x) < 50", "> 3"),
    ],
)
def test_condition_splits_on_the_last_comparison(text: str, expr: str, expectation: str) -> None:
    condition = Condition.parse(text)
    assert condition.expr == expr
    assert str(condition.expectation) == expectation
    assert str(condition) == f"{expr} {expectation}"


@pytest.mark.parametrize("text", ["sum(x)", "sum(x) <", "< 50", "", "sum(x) < fifty"])
def test_condition_rejects_text_without_an_expression_and_a_comparison(text: str) -> None:
    with pytest.raises(ValueError, match="expected '<PromQL expression> <op> <number>'"):
        Condition.parse(text)


# ------------------------------------------------------------------ moments


@pytest.mark.parametrize(
    ("text", "anchor", "offset_s", "span"),
    [
        ("start", "start", 0.0, None),
        ("end", "end", 0.0, None),
        ("fault.start", "fault.start", 0.0, "fault"),
        ("fault.end+10s", "fault.end", 10.0, "fault"),
        ("fault.end + 500ms", "fault.end", 0.5, "fault"),
        ("load.start-5s", "load.start", -5.0, "load"),
        ("load.end+2m", "load.end", 120.0, "load"),
        ("slow-link.end", "slow-link.end", 0.0, "slow-link"),
        ("slow-link.start+1.5s", "slow-link.start", 1.5, "slow-link"),
        ("start+30s", "start", 30.0, None),
    ],
)
def test_moment_parses_anchor_offset_and_span(
    text: str, anchor: str, offset_s: float, span: str | None
) -> None:
    moment = Moment.parse(text)
    assert (moment.anchor, moment.offset_s) == (anchor, offset_s)
    assert moment.span == span


@pytest.mark.parametrize(
    ("text", "shown"),
    [("start", "start"), ("fault.end+10s", "fault.end+10s"), ("load.start-5s", "load.start-5s")],
)
def test_moment_prints_as_written(text: str, shown: str) -> None:
    assert str(Moment.parse(text)) == shown


@pytest.mark.parametrize("text", ["fault", "load", "slow-link", "load+5s"])
def test_moment_rejects_a_bare_span_asking_for_its_start_or_end(text: str) -> None:
    with pytest.raises(ValueError, match=r"\.start or .*\.end"):
        Moment.parse(text)


@pytest.mark.parametrize(
    "text", ["", "fault.middle", "fault.end+5x", "fault.end+-5s", "1fault.end", "fault.end 5s"]
)
def test_moment_rejects_text_that_is_not_a_moment(text: str) -> None:
    with pytest.raises(ValueError, match="expected a moment such as"):
        Moment.parse(text)


@pytest.mark.parametrize(
    ("text", "anchor", "offset_s"), [("end-5s", "end", -5.0), ("start-1s", "start", -1.0)]
)
def test_moment_takes_a_negative_offset_on_start_and_end(
    text: str, anchor: str, offset_s: float
) -> None:
    moment = Moment.parse(text)
    assert (moment.anchor, moment.offset_s) == (anchor, offset_s)


@pytest.mark.parametrize("text", ["1000000h", "169h", "1e308"])
def test_a_duration_past_a_week_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="at most a week"):
        parse_duration(text if text != "1e308" else 1e308)


@pytest.mark.parametrize("text", ["10000000000/s", "2000000/s", "1e308"])
def test_a_rate_past_a_million_a_second_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="at most 1,000,000/s"):
        parse_rate(text if text != "1e308" else 1e308)


def test_an_expectation_with_an_infinite_number_is_refused() -> None:
    with pytest.raises(ValueError, match="must be finite"):
        Expectation.parse("< 1e999")
