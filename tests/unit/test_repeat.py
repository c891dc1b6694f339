"""--repeat K: the runs' seeds, each check's counts across the runs, and the repeat verdict."""

from __future__ import annotations

import pytest

from harness.journal import Journal
from harness.repeat import Unopened, repeat_verdict, seeds, summarize
from harness.verdict import Verdict

ABORTED, FAILED, FLAKY, INCONCLUSIVE, HELD, NA = (
    Verdict.ABORTED,
    Verdict.FAILED,
    Verdict.FLAKY,
    Verdict.INCONCLUSIVE,
    Verdict.HELD,
    Verdict.NOT_APPLICABLE,
)


def journal(verdict: str, seed: int, *checks: tuple[str, str, str]) -> Journal:
    """A finished run's journal with only what a repeat reads; checks are (name, verdict,
    observed)."""
    return Journal.from_json(
        {
            "experiment": "slow-consumer",
            "target": "redis-streams",
            "verdict": verdict,
            "seed": seed,
            "run_dir": f"runs/r{seed}",
            "duration_s": 60.0,
            "checks": [
                {"name": n, "verdict": v, "expected": "== 1", "observed": o} for n, v, o in checks
            ],
        }
    )


def test_seeds_count_up_from_the_given_one_or_are_each_drawn() -> None:
    assert seeds(7, 3) == [7, 8, 9]
    assert seeds(None, 3) == [None, None, None]
    assert seeds(0, 1) == [0]


@pytest.mark.parametrize(
    ("verdicts", "repeated"),
    [
        ([HELD], HELD),
        ([HELD, HELD, HELD], HELD),
        ([FAILED, FAILED], FAILED),
        ([INCONCLUSIVE, INCONCLUSIVE], INCONCLUSIVE),
        ([NA, NA], NA),  # a check the target cannot honour stays so
        ([HELD, FAILED], FLAKY),
        ([FAILED, HELD, HELD], FLAKY),
        ([HELD, FAILED, INCONCLUSIVE], FLAKY),  # the disagreement is proven all the same
        ([HELD, INCONCLUSIVE], INCONCLUSIVE),
        ([FAILED, INCONCLUSIVE], FAILED),
        ([HELD, ABORTED], ABORTED),
        ([], INCONCLUSIVE),
    ],
)
def test_the_repeat_verdict(verdicts: list[Verdict], repeated: Verdict) -> None:
    assert repeat_verdict(verdicts) is repeated


def test_a_check_that_held_in_one_run_and_failed_in_another_is_flaky() -> None:
    repeat = summarize(
        [
            journal("held", 7, ("worker-0 up", "held", "1"), ("lost", "held", "0")),
            journal("failed", 8, ("worker-0 up", "failed", "0"), ("lost", "held", "0")),
            journal("held", 9, ("worker-0 up", "held", "1"), ("lost", "held", "0")),
        ]
    )
    assert (repeat.verdict, repeat.runs, repeat.held) == (FLAKY, 3, 2)
    assert repeat.seeds == (7, 8, 9)
    assert repeat.run_dirs == ("runs/r7", "runs/r8", "runs/r9")
    assert repeat.duration_s == 180.0
    up, lost = repeat.checks
    assert (up.name, up.verdict, up.held, up.failed, up.inconclusive) == (
        "worker-0 up",
        FLAKY,
        2,
        1,
        0,
    )
    assert up.observed == ("1", "0", "1") and up.expected == "== 1"
    assert (lost.verdict, lost.held) == (HELD, 3)


def test_the_json_names_every_count_and_each_run() -> None:
    repeat = summarize(
        [
            journal("held", 1, ("up", "held", "1")),
            journal("failed", 2, ("up", "failed", "0")),
        ]
    )
    assert repeat.to_json() == {
        "experiment": "slow-consumer",
        "target": "redis-streams",
        "verdict": "flaky",
        "runs": 2,
        "held": 1,
        "seeds": [1, 2],
        "run_dirs": ["runs/r1", "runs/r2"],
        "checks": [
            {
                "name": "up",
                "expected": "== 1",
                "verdict": "flaky",
                "held": 1,
                "failed": 1,
                "inconclusive": 0,
                "not_applicable": 0,
                "observed": ["1", "0"],
            }
        ],
    }


def test_checks_are_matched_by_name_whatever_their_order() -> None:
    repeat = summarize(
        [
            journal("failed", 1, ("a", "held", "1"), ("b", "failed", "9")),
            journal("failed", 2, ("b", "failed", "8"), ("a", "held", "2")),
        ]
    )
    assert [(c.name, c.verdict, c.observed) for c in repeat.checks] == [
        ("a", HELD, ("1", "2")),
        ("b", FAILED, ("9", "8")),
    ]
    assert repeat.verdict is FAILED


def test_a_run_that_judged_nothing_counts_as_inconclusive_for_every_check() -> None:
    aborted = journal("aborted", 2)  # aborted before judging: no checks
    unopened = Unopened("slow-consumer", "redis-streams", None)
    repeat = summarize([journal("held", 1, ("up", "held", "1")), aborted, unopened])
    [up] = repeat.checks
    assert (up.held, up.failed, up.inconclusive) == (1, 0, 2)
    assert up.observed == ("1", None, None)
    assert up.verdict is INCONCLUSIVE
    assert repeat.verdict is ABORTED
    assert repeat.seeds == (1, 2, None) and repeat.run_dirs == ("runs/r1", "runs/r2", None)


def test_not_applicable_is_counted_apart() -> None:
    why = "the target has no harness_oldest_message_age_seconds"
    repeat = summarize([journal("held", 1, ("oldest", "not-applicable", why))] * 2)
    [oldest] = repeat.checks
    assert (oldest.verdict, oldest.not_applicable, oldest.inconclusive) == (NA, 2, 0)


def test_one_run_is_its_own_repeat() -> None:
    repeat = summarize([journal("failed", 5, ("up", "failed", "0"))])
    assert (repeat.verdict, repeat.runs, repeat.held) == (FAILED, 1, 0)


def test_a_repeat_needs_a_run() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        summarize([])
