"""Deliveries per message, overlapping processings, and what an output holds and commits."""

from __future__ import annotations

import json
from pathlib import Path

from harness.ledger import summary
from tests.unit.test_ledger_io import write_lines


def sent(*ids: str) -> list[dict[str, object]]:
    return [{"id": i, "type": t, "t": 1.0} for i in ids for t in ("invoke", "ok")]


def delivery(
    message_id: str, start: float, end: float, consumer: str, applied: bool = True
) -> dict[str, object]:
    line: dict[str, object] = {"id": message_id, "start": start, "t": end, "consumer": consumer}
    return line if applied else {**line, "applied": False}


def judged(
    tmp_path: Path, ids: list[str], *deliveries: dict[str, object], effects: int | None = None
) -> summary.LedgerSummary:
    """The ledger of ``ids`` sent and acknowledged, ``deliveries`` recorded, and (if given) an
    output holding that many effects, as the run folder keeps them: a line each."""
    counted = None
    if effects is not None:
        counted = write_lines(tmp_path / "effects.jsonl", *[{"id": "counts"}] * effects)
    return summary.read(
        write_lines(tmp_path / "sent.jsonl", *sent(*ids)),
        write_lines(tmp_path / "processed.jsonl", *deliveries),
        effects=counted,
    )


def test_deliveries_that_applied_nothing_count_as_attempts_and_not_as_processings(
    tmp_path: Path,
) -> None:
    found = judged(
        tmp_path,
        ["a", "b", "p"],
        delivery("a", 1, 2, "w1"),
        delivery("a", 5, 6, "w2", applied=False),  # a redelivery the idempotent sink absorbed
        delivery("b", 1, 2, "w1"),
        *(delivery("p", n, n + 0.5, "w1", applied=False) for n in range(4)),  # poison: failed
    )
    assert (found.processed, found.deliveries, found.duplicated) == (2, 2, 0)
    assert found.lost == 1  # p: every attempt failed, and it rests in no place
    assert (found.attempts_max, found.attempts_p99) == (4, 4)
    assert found.examples["attempts_max"][:2] == ["p", "a"]
    assert found.concurrent == 0  # a's two deliveries came one after the other


def test_the_99th_percentile_of_attempts_ignores_the_last_percent(tmp_path: Path) -> None:
    ids = [f"m{n:03}" for n in range(200)]
    once = [delivery(i, 1, 2, "w1") for i in ids]
    # One message in 200 delivered five times: the most, not the 99th percentile.
    found = judged(tmp_path, ids, *once, *(delivery("m000", n, n + 0.1, "w1") for n in range(4)))
    assert (found.attempts_max, found.attempts_p99) == (5, 1)


def test_deliveries_of_one_message_that_overlap_on_two_consumers_are_concurrent(
    tmp_path: Path,
) -> None:
    found = judged(
        tmp_path,
        ["a", "b", "c"],
        delivery("a", 1, 5, "w1"),
        delivery("a", 3, 4, "w2", applied=False),  # claimed while w1 still worked on it
        delivery("b", 1, 2, "w1"),
        delivery("b", 2, 3, "w2"),  # after the first one ended: a redelivery, not concurrent
        delivery("c", 1, 3, "w1"),
        delivery("c", 1, 3, "w1"),  # twice in one batch of one consumer: sequential there
    )
    assert found.concurrent == 1 and found.examples["concurrent"] == ["a"]


def test_without_a_processing_start_concurrency_is_not_judged(tmp_path: Path) -> None:
    found = judged(tmp_path, ["a"], {"id": "a", "t": 2.0}, {"id": "a", "t": 3.0})
    assert found.concurrent is None
    assert (found.attempts_max, found.duplicated) == (2, 1)


def test_effects_beyond_one_per_message_processed_are_the_excess(tmp_path: Path) -> None:
    deliveries = [delivery(i, 1, 2, "w1") for i in ("a", "b", "c")]
    found = judged(tmp_path, ["a", "b", "c"], *deliveries, effects=5)
    assert found.excess == 2  # five counts for three events
    assert judged(tmp_path, ["a"], delivery("a", 1, 2, "w1")).excess is None  # not declared


def test_partitions_whose_committed_position_is_not_their_records_processed_are_mismatched(
    tmp_path: Path,
) -> None:
    """Kafka's system tests compare them per partition: more processings than the position
    were processed again, fewer were passed over; a partition on one side only is at 0."""
    positions = {
        "committed": {"0": 3, "1": 5, "10": 2},
        "processed": {"0": 3, "1": 7, "2": 1},
    }
    path = tmp_path / "positions.json"
    path.write_text(json.dumps(positions), encoding="utf-8")
    found = summary.read(
        write_lines(tmp_path / "sent.jsonl", *sent("a")),
        write_lines(tmp_path / "processed.jsonl", delivery("a", 1, 2, "w1")),
        positions=path,
    )
    assert found.mismatched_positions == 3
    assert found.examples["mismatched_positions"] == [
        "1: committed 5, processed 7",
        "2: committed 0, processed 1",
        "10: committed 2, processed 0",
    ]
    assert judged(tmp_path, ["a"], delivery("a", 1, 2, "w1")).mismatched_positions is None
