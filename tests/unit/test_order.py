"""Order within a key: reordered, skipped and max_gap from the ledger files."""

from __future__ import annotations

from pathlib import Path

from harness.ledger import summary
from tests.unit.test_ledger_io import write_lines


def sends(*messages: tuple[str, str, float, str]) -> list[dict[str, object]]:
    """(id, key, sent at, outcome): an invoke line, then the completion 0.1 s later."""
    lines: list[dict[str, object]] = []
    for message_id, key, t, outcome in messages:
        lines.append({"id": message_id, "type": "invoke", "t": t, "key": key})
        lines.append({"id": message_id, "type": outcome, "t": t + 0.1})
    return lines


def judged(tmp_path: Path, sent: list[dict[str, object]], order: str) -> summary.LedgerSummary:
    """The ledger when the sink processed ``order`` (ids, space-separated), a second apart."""
    processed = [{"id": i, "t": 100.0 + n} for n, i in enumerate(order.split())]
    return summary.read(
        write_lines(tmp_path / "sent.jsonl", *sent),
        write_lines(tmp_path / "processed.jsonl", *processed),
    )


def test_processing_in_send_order_is_neither_reordered_nor_skipped(tmp_path: Path) -> None:
    sent = sends(("a1", "a", 1, "ok"), ("a2", "a", 2, "ok"), ("b1", "b", 1.5, "ok"))
    found = judged(tmp_path, sent, "a1 b1 a2 a1")  # a redelivery of a1 comes after: harmless
    assert (found.reordered, found.skipped, found.max_gap) == (0, 0, 0)


def test_a_message_processed_before_one_acknowledged_before_it_was_sent_is_reordered(
    tmp_path: Path,
) -> None:
    sent = sends(("a1", "a", 1, "ok"), ("a2", "a", 2, "ok"), ("a3", "a", 3, "ok"))
    found = judged(tmp_path, sent, "a2 a3 a1")
    assert found.reordered == 2 and found.examples["reordered"] == ["a2", "a3"]
    # Another key's order is its own; a send that overlapped another (sent before the other's
    # acknowledgement) may come first.
    overlapping = sends(("x1", "x", 1, "ok"), ("x2", "x", 1.05, "ok"), ("y1", "y", 0.5, "ok"))
    assert judged(tmp_path, overlapping, "x2 y1 x1").reordered == 0


def test_acknowledged_messages_passed_over_are_skipped_and_their_longest_run_is_the_gap(
    tmp_path: Path,
) -> None:
    sent = sends(
        *((f"a{n}", "a", n, "ok") for n in range(1, 7)),
        ("b1", "b", 1, "ok"), ("b2", "b", 2, "ok"), ("b3", "b", 3, "fail"),
    )  # fmt: skip
    # a2, a3 passed over (a4 processed), a5 too (a6 processed); b2 lost at the tail (nothing
    # of b processed after it), b3 refused: neither is skipped.
    found = judged(tmp_path, sent, "a1 a4 a6 b1")
    assert (found.skipped, found.max_gap, found.lost) == (3, 2, 4)
    assert found.examples["skipped"] == ["a2", "a3", "a5"]


def test_without_keys_or_without_processing_order_there_is_no_order_to_judge(
    tmp_path: Path,
) -> None:
    unkeyed = [{k: v for k, v in line.items() if k != "key"} for line in sends(("a", "", 1, "ok"))]
    assert judged(tmp_path, unkeyed, "a").reordered is None
    keyed = write_lines(tmp_path / "sent.jsonl", *sends(("a", "k", 1, "ok")))
    from_source = write_lines(tmp_path / "processed.jsonl", {"id": "a", "source": "redis"})
    found = summary.read(keyed, from_source)
    assert (found.reordered, found.skipped, found.max_gap) == (None, None, None)
    assert summary.LedgerSummary.from_json(found.to_json()) == found
