"""Reading the ledgers from hand-written files, including the torn records a kill leaves."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from harness.ledger.files import LedgerUnreadable, SendOutcome, read_processed, read_sends


def write_lines(path: Path, *records: dict[str, object], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return path


def invoke(i: str) -> dict[str, object]:
    return {"id": i, "type": "invoke", "t": 1.0}


def done(i: str, kind: str, status: int | None) -> dict[str, object]:
    return {"id": i, "type": kind, "t": 2.0, "status": status, "error": None}


def test_a_completion_decides_the_outcome(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "sends.jsonl",
        invoke("a"),
        invoke("b"),
        invoke("c"),
        done("a", "ok", 202),
        done("b", "fail", 503),
        done("c", "info", None),
    )
    assert read_sends(path) == {
        "a": SendOutcome.OK,
        "b": SendOutcome.FAIL,
        "c": SendOutcome.INFO,
    }


def test_an_invoke_without_completion_is_info(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "sends.jsonl", invoke("a"), done("a", "ok", 200), invoke("b"))
    assert read_sends(path) == {"a": SendOutcome.OK, "b": SendOutcome.INFO}


def test_a_completion_flushed_before_its_invoke_still_decides(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "sends.jsonl", done("a", "fail", 400), invoke("a"))
    assert read_sends(path) == {"a": SendOutcome.FAIL}


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "sends.jsonl",
        invoke("a"),
        done("a", "ok", 202),
        invoke("b"),
        tail='{"id": "b", "type": "ok", "t": 3.',
    )
    assert read_sends(path) == {"a": SendOutcome.OK, "b": SendOutcome.INFO}


def test_a_record_glued_after_a_torn_one_is_salvaged(tmp_path: Path) -> None:
    path = tmp_path / "processed.jsonl"
    path.write_text(
        '{"id": "a", "t": 1.0, "consumer": "c1"}\n'
        '{"id": "b", "t": 2.0, "cons{"id": "c", "t": 3.0, "consumer": "c2"}\n'
        '{"id": "a", "t": 4.0, "consumer": "c2"}\n'
    )
    assert read_processed(path) == collections.Counter({"a": 2, "c": 1})


def test_missing_files_are_empty(tmp_path: Path) -> None:
    assert read_sends(tmp_path / "absent.jsonl") == {}
    assert read_processed(tmp_path / "absent.jsonl") == collections.Counter()


def test_processing_is_counted_per_id(tmp_path: Path) -> None:
    path = tmp_path / "processed.jsonl"
    path.write_text(
        '{"id": "a", "t": 1.0, "consumer": "c1"}\n'
        '{"id": "b", "t": 1.5, "consumer": "c1"}\n'
        '{"id": "a", "t": 2.0, "consumer": "c2"}\n'
        '{"id": "b", "t": 2.'
    )
    assert read_processed(path) == collections.Counter({"a": 2, "b": 1})


def test_a_processed_record_without_an_id_says_which_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "processed.jsonl", {"id": "a"}, {"ID": "b"}, {"id": 7})
    with pytest.raises(
        LedgerUnreadable, match=r'processed.jsonl line 2: a record without a message "id"'
    ):
        read_processed(path)


def test_a_numeric_id_is_the_same_message_as_its_string(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "processed.jsonl", {"id": 7}, {"id": "7"})
    assert read_processed(path) == collections.Counter({"7": 2})


def test_a_send_of_an_unknown_type_says_which_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "sent.jsonl", invoke("a"), {"id": "a", "type": "maybe"})
    with pytest.raises(LedgerUnreadable, match=r"sent\.jsonl line 2: type is 'maybe'"):
        read_sends(path)


def test_bytes_that_are_not_utf8_in_a_torn_record_cost_only_that_record(tmp_path: Path) -> None:
    path = tmp_path / "processed.jsonl"
    path.write_bytes(
        b'{"id": "a", "t": 1.0}\n'
        b'{"id": "\xc3{"id": "b", "t": 2.0}\n'  # cut inside a two-byte character, then glued
        b'{"id": "c", "t": 3.0}\n'
    )
    assert read_processed(path) == {"a": 1, "b": 1, "c": 1}


def test_windows_line_ends_and_lines_that_are_not_records_are_read_as_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sent.jsonl"
    path.write_text(
        '{"id": "a", "type": "invoke"}\r\n[1, 2]\r\n\r\n"text"\n{"id": "a", "type": "ok"}\r\n'
    )
    assert read_sends(path) == {"a": SendOutcome.OK}


def test_a_later_completion_of_the_same_send_decides(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "sent.jsonl", invoke("a"), done("a", "info", None), done("a", "ok", 202)
    )
    assert read_sends(path) == {"a": SendOutcome.OK}


def test_a_bad_id_is_reported_on_its_own_line_even_after_a_torn_one(tmp_path: Path) -> None:
    path = tmp_path / "processed.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "t{"id": 1.5}\n{"id": "c"}\n')
    with pytest.raises(LedgerUnreadable, match=r"processed.jsonl line 2: a record without"):
        read_processed(path)


def test_an_unprocessed_message_found_in_a_place_is_counted_there_not_as_lost(
    tmp_path: Path,
) -> None:
    """a: processed; b: dead-lettered; c: both dead-lettered and delayed (the first role wins);
    d: delayed; e: in no place, so lost; f: refused, yet dead-lettered (not counted: never
    acknowledged); g: processed and also left in the pending place (processed wins)."""
    from harness.ledger import summary

    sent = write_lines(
        tmp_path / "sent.jsonl",
        *(done(i, "ok", 202) for i in "abcdeg"),
        done("f", "fail", 503),
    )
    processed = write_lines(tmp_path / "processed.jsonl", {"id": "a"}, {"id": "g"})
    places = {
        "dead_lettered": write_lines(tmp_path / "dl.jsonl", {"id": "b"}, {"id": "c"}, {"id": "f"}),
        "delayed": write_lines(tmp_path / "delayed.jsonl", {"id": "c"}, {"id": "d"}, {"id": "d"}),
        "pending": write_lines(tmp_path / "pending.jsonl", {"id": "g"}),
    }
    found = summary.read(sent, processed, places)  # type: ignore[arg-type]
    assert (found.lost, found.dead_lettered, found.delayed, found.pending) == (1, 2, 1, 0)
    assert found.examples["lost"] == ["e"]
    assert found.examples["dead_lettered"] == ["b", "c"]
    assert found.examples["delayed"] == ["d"]
    without = summary.read(sent, processed, {"pending": tmp_path / "no-such.jsonl"})
    assert (without.lost, without.dead_lettered) == (4, 0)
    assert (
        summary.LedgerSummary.from_json(
            {k: v for k, v in found.to_json().items() if k not in ("dead_lettered", "delayed")}
        ).dead_lettered
        == 0
    )  # a journal written before places were counted
