"""`harness history`: the ledger as Jepsen's enqueue/dequeue operations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.ledger import history
from tests.unit.test_ledger_io import done, invoke, write_lines


def ledger(tmp_path: Path) -> tuple[Path, Path]:
    """a: acknowledged and processed twice; b: refused; c: never answered, yet processed;
    d: acknowledged, never processed; e: its completion flushed before its invoke."""
    sent = write_lines(
        tmp_path / "sent.jsonl",
        {**invoke("a"), "t": 10.0},
        {**invoke("b"), "t": 10.5},
        {**done("a", "ok", 202), "t": 11.0},
        {**done("b", "fail", 503), "t": 11.5},
        {**invoke("c"), "t": 12.0},
        {**invoke("d"), "t": 12.5},
        {**done("d", "ok", 202), "t": 13.0},
        {**done("e", "ok", 202), "t": 13.5},
        {**invoke("e"), "t": 13.2},
    )
    processed = write_lines(
        tmp_path / "processed.jsonl",
        {"id": "a", "t": 12.2, "consumer": "w1"},
        {"id": "c", "t": 14.0, "consumer": "w2"},
        {"id": "a", "t": 15.0, "consumer": "w2"},
        {"id": "e", "t": 14.5, "consumer": "w1"},
    )
    return sent, processed


def test_the_history_pairs_every_invoke_with_its_completion_in_time_order(tmp_path: Path) -> None:
    sent, processed = ledger(tmp_path)
    out = tmp_path / "history.jsonl"
    assert history.write(sent, processed, out, "jsonl") == 2 * 5 + 2 * 4
    ops = [json.loads(line) for line in out.read_text().splitlines()]
    assert [op["index"] for op in ops] == list(range(len(ops)))
    times = [op["time"] for op in ops]
    assert times == sorted(times) and times[0] == 0
    assert times[-1] == 5_000_000_000  # the last time, 15 s, less the first: c's info
    enqueues = [(op["type"], op["value"]) for op in ops if op["f"] == "enqueue"]
    assert enqueues == [
        ("invoke", "a"), ("invoke", "b"), ("ok", "a"), ("fail", "b"), ("invoke", "c"),
        ("invoke", "d"), ("ok", "d"), ("invoke", "e"), ("ok", "e"), ("info", "c"),
    ]  # fmt: skip
    dequeued = [op["value"] for op in ops if op["f"] == "dequeue" and op["type"] == "ok"]
    assert dequeued == ["a", "c", "e", "a"]
    # Each process does one operation: its invoke, then its completion.
    by_process: dict[int, list[str]] = {}
    for op in ops:
        by_process.setdefault(op["process"], []).append(op["type"])
    assert all(types[0] == "invoke" and len(types) == 2 for types in by_process.values())
    assert all(op["value"] is None for op in ops if op["f"] == "dequeue" and op["type"] == "invoke")


def test_the_edn_history_is_what_jepsen_reads(tmp_path: Path) -> None:
    sent, processed = ledger(tmp_path)
    out = tmp_path / "history.edn"
    history.write(sent, processed, out, "edn")
    first, *_, last = out.read_text().splitlines()
    assert first == '{:index 0, :type :invoke, :f :enqueue, :value "a", :process 0, :time 0}'
    assert last.startswith('{:index 17, :type :info, :f :enqueue, :value "c"')


def test_an_id_with_quotes_is_escaped_and_a_processing_without_time_comes_last(
    tmp_path: Path,
) -> None:
    sent = write_lines(tmp_path / "sent.jsonl", {**invoke('say "hi"'), "t": 1.0})
    processed = write_lines(tmp_path / "processed.jsonl", {"id": 'say "hi"', "source": "redis"})
    out = tmp_path / "history.jsonl"
    history.write(sent, processed, out, "jsonl")
    ops = [json.loads(line) for line in out.read_text().splitlines()]
    assert [op["value"] for op in ops] == ['say "hi"', 'say "hi"', None, 'say "hi"']
    assert [op["type"] for op in ops] == ["invoke", "info", "invoke", "ok"]


@pytest.mark.parametrize("form", history.FORMATS)
def test_an_empty_ledger_is_an_empty_history(tmp_path: Path, form: history.Format) -> None:
    out = tmp_path / f"history.{form}"
    assert history.write(tmp_path / "none", tmp_path / "neither", out, form) == 0
    assert out.read_text() == ""


def test_unseen_counts_what_was_acknowledged_and_not_yet_processed(tmp_path: Path) -> None:
    sent, processed = ledger(tmp_path)
    # Acknowledged: a at 11.0 (processed 12.2), d at 13.0 (never), e at 13.5 (14.5); b refused,
    # c never answered: neither is waited for.
    points = history.unseen(sent, processed, 10.0, 16.0)
    assert points == [
        (10.0, 0.0), (11.0, 1.0), (12.0, 1.0), (13.0, 1.0), (14.0, 2.0), (15.0, 1.0),
        (16.0, 1.0),
    ]  # fmt: skip
    untimed = write_lines(tmp_path / "untimed.jsonl", {"id": "a", "source": "redis"})
    assert history.unseen(sent, untimed, 10.0, 16.0) is None
