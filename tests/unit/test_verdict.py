"""Merging verdicts, worst first, and the exit code a CI pipeline sees."""

from __future__ import annotations

import itertools

import pytest

from harness.verdict import Verdict, merge

ABORTED, FAILED, FLAKY, INCONCLUSIVE, HELD = (
    Verdict.ABORTED,
    Verdict.FAILED,
    Verdict.FLAKY,
    Verdict.INCONCLUSIVE,
    Verdict.HELD,
)


@pytest.mark.parametrize(
    ("verdicts", "merged"),
    [
        ([HELD], HELD),
        ([HELD, HELD, HELD], HELD),
        ([HELD, INCONCLUSIVE], INCONCLUSIVE),
        ([INCONCLUSIVE, FAILED, HELD], FAILED),
        ([FAILED, ABORTED], ABORTED),
        ([HELD, INCONCLUSIVE, FAILED, ABORTED], ABORTED),
        ([HELD, FLAKY], FLAKY),
        ([INCONCLUSIVE, FLAKY], FLAKY),
        ([FLAKY, FAILED], FAILED),
    ],
)
def test_merge_takes_the_worst(verdicts: list[Verdict], merged: Verdict) -> None:
    assert merge(verdicts) is merged


def test_merge_priority_is_aborted_failed_flaky_inconclusive_held_in_any_order() -> None:
    order = [ABORTED, FAILED, FLAKY, INCONCLUSIVE, HELD]
    for worst, verdict in enumerate(order):
        for rest in itertools.permutations(order[worst:]):
            assert merge(rest) is verdict


def test_nothing_to_merge_is_inconclusive_never_held() -> None:
    assert merge([]) is INCONCLUSIVE


def test_merge_takes_any_iterable() -> None:
    assert merge(v for v in (HELD, FAILED)) is FAILED


@pytest.mark.parametrize(
    ("verdict", "code"), [(HELD, 0), (FAILED, 1), (INCONCLUSIVE, 2), (ABORTED, 2), (FLAKY, 4)]
)
def test_exit_codes(verdict: Verdict, code: int) -> None:
    assert verdict.exit_code == code


def test_verdicts_are_written_as_lowercase_words() -> None:
    assert [v.value for v in Verdict] == [
        "held",
        "failed",
        "inconclusive",
        "aborted",
        "not-applicable",
        "flaky",
    ]


def test_a_check_not_applicable_is_left_out_of_the_merge() -> None:
    assert merge([Verdict.HELD, Verdict.NOT_APPLICABLE]) is Verdict.HELD
    assert merge([Verdict.FAILED, Verdict.NOT_APPLICABLE]) is Verdict.FAILED
    # Nothing the target could honour: nothing was proven.
    assert merge([Verdict.NOT_APPLICABLE]) is Verdict.INCONCLUSIVE
