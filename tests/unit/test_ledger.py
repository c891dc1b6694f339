"""The ledger's account of hand-written sends and processings, as Jepsen's queue checkers do."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.ledger import LedgerSummary, summarize
from harness.ledger.files import SendOutcome

OK, FAIL, INFO = SendOutcome.OK, SendOutcome.FAIL, SendOutcome.INFO


def test_an_empty_ledger_has_nothing_and_zero_rates() -> None:
    summary = summarize({}, Counter())
    assert summary == LedgerSummary(0, 0, 0, 0, 0, 0, 0, 0, 0, summary.examples)
    assert (summary.duplicate_rate, summary.loss_rate) == (0.0, 0.0)


def test_every_acknowledged_message_processed_once_is_clean() -> None:
    summary = summarize({"a": OK, "b": OK}, Counter(["a", "b"]))
    assert (summary.acknowledged, summary.processed, summary.deliveries) == (2, 2, 2)
    assert (summary.lost, summary.duplicated, summary.unexpected, summary.recovered) == (0, 0, 0, 0)


def test_acknowledged_but_never_processed_is_lost() -> None:
    summary = summarize({"a": OK, "b": OK, "c": OK}, Counter(["a"]))
    assert summary.lost == 2
    assert summary.examples["lost"] == ["b", "c"]
    assert summary.loss_rate == pytest.approx(2 / 3)


def test_processed_more_than_once_is_duplicated() -> None:
    summary = summarize({"a": OK, "b": OK}, Counter({"a": 3, "b": 1}))
    assert (summary.duplicated, summary.processed, summary.deliveries) == (1, 2, 4)
    assert summary.examples["duplicated"] == ["a"]
    assert summary.duplicate_rate == 1.0
    assert summary.lost == 0


def test_processed_but_never_sent_is_unexpected() -> None:
    summary = summarize({"a": OK}, Counter(["a", "ghost"]))
    assert summary.unexpected == 1
    assert summary.examples["unexpected"] == ["ghost"]


def test_processed_although_the_send_failed_is_unexpected() -> None:
    summary = summarize({"a": OK, "refused": FAIL}, Counter(["a", "refused"]))
    assert (summary.failed, summary.unexpected) == (1, 1)
    assert summary.examples["unexpected"] == ["refused"]


def test_a_failed_send_never_processed_is_neither_lost_nor_unexpected() -> None:
    summary = summarize({"a": OK, "refused": FAIL}, Counter(["a"]))
    assert (summary.failed, summary.lost, summary.unexpected) == (1, 0, 0)


def test_no_answer_then_processed_is_recovered_not_unexpected() -> None:
    summary = summarize({"a": OK, "maybe": INFO, "gone": INFO}, Counter(["a", "maybe"]))
    assert (summary.indeterminate, summary.recovered) == (2, 1)
    assert summary.examples["recovered"] == ["maybe"]
    assert (summary.lost, summary.unexpected) == (0, 0)


def test_indeterminate_messages_do_not_count_as_acknowledged() -> None:
    summary = summarize({"a": OK, "maybe": INFO}, Counter())
    assert (summary.acknowledged, summary.lost, summary.loss_rate) == (1, 1, 1.0)


def test_a_run_with_every_kind_of_anomaly() -> None:
    sends = {"m1": OK, "m2": OK, "m3": OK, "m4": FAIL, "m5": INFO, "m6": INFO, "m7": OK}
    processed = Counter({"m1": 1, "m2": 2, "m4": 1, "m5": 1, "m9": 1, "m7": 3})
    summary = summarize(sends, processed)
    assert summary.to_json() == {
        "acknowledged": 4,
        "failed": 1,
        "indeterminate": 2,
        "processed": 6,
        "deliveries": 9,
        "lost": 1,
        "duplicated": 2,
        "unexpected": 2,
        "recovered": 1,
        "examples": {
            "lost": ["m3"],
            "duplicated": ["m2", "m7"],
            "unexpected": ["m4", "m9"],
            "recovered": ["m5"],
            "dead_lettered": [],
            "delayed": [],
            "pending": [],
        },
        "dead_lettered": 0,
        "delayed": 0,
        "pending": 0,
        "reordered": None,  # no keys: order is not judged
        "skipped": None,
        "max_gap": None,
        "attempts_max": None,  # counts in memory: no deliveries to count
        "attempts_p99": None,
        "concurrent": None,
        "excess": None,  # no output's effects counted
        "mismatched_positions": None,  # no output's positions read
        "duplicate_rate": 0.5,
        "loss_rate": 0.25,
    }


def test_examples_are_sorted_and_capped_at_ten() -> None:
    ids = [f"m{n:02}" for n in (14, 3, 9, 0, 12, 7, 1, 11, 5, 13, 2, 8, 6, 10, 4)]
    summary = summarize(dict.fromkeys(ids, OK), Counter())
    assert summary.lost == 15
    assert summary.examples["lost"] == [f"m{n:02}" for n in range(10)]


def test_value_reads_counts_and_rates_by_name() -> None:
    summary = summarize({"a": OK, "b": OK}, Counter({"a": 2}))
    assert (summary.value("lost"), summary.value("loss_rate")) == (1, 0.5)
    assert summary.value("duplicate_rate") == 1.0
