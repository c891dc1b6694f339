"""Reading the message ledgers: what the load generator sent, and what the sink saw processed.

Both files are JSON lines appended by processes the experiment may kill at any moment, so a
record can be torn: cut short at the end of the file, or cut short and then glued to the next
record when a restarted writer appends to the same file. Torn records are expected artefacts
of the experiment, not corruption, and the readers skip them (salvaging a glued record).
"""

from __future__ import annotations

import collections
import enum
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class SendOutcome(enum.Enum):
    """What the producer told the load generator about one send."""

    OK = "ok"  # acknowledged: the message must be processed
    FAIL = "fail"  # refused with an HTTP error: the message must not be processed
    INFO = "info"  # no answer: the message may or may not have been enqueued


class LedgerUnreadable(Exception):
    """A whole record that is not a ledger record: the ledger cannot be judged, and saying so
    beats counting around it (a sink that writes records without ids loses messages too)."""


_TYPES = {"invoke", *(outcome.value for outcome in SendOutcome)}


def read_sends(path: Path) -> dict[str, SendOutcome]:
    """Each sent id's outcome; a send with no completion line (its answer never came) is INFO."""
    sends: dict[str, SendOutcome] = {}
    for number, record in _records(path):
        message_id = _id(path, number, record)
        kind = record.get("type")
        if kind not in _TYPES:
            raise LedgerUnreadable(
                f"{path.name} line {number}: type is {kind!r}, not one of {sorted(_TYPES)}"
            )
        if kind == "invoke":
            sends.setdefault(message_id, SendOutcome.INFO)
        else:
            sends[message_id] = SendOutcome(kind)
    return sends


def read_processed(path: Path) -> collections.Counter[str]:
    """How many times each id was processed; more than once is a duplicate delivery."""
    return collections.Counter(_id(path, number, record) for number, record in _records(path))


def _id(path: Path, number: int, record: dict[str, Any]) -> str:
    message_id = record.get("id")
    if isinstance(message_id, bool) or not isinstance(message_id, str | int):
        raise LedgerUnreadable(
            f'{path.name} line {number}: a record without a message "id" (a string or a '
            f"number): {json.dumps(record)[:120]}"
        )
    return str(message_id)


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The file's whole records, with their line numbers; a missing file has none, because its
    writer never wrote one."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    for number, line in enumerate(text.splitlines(), start=1):
        record = _decode(line)
        if record is not None:
            yield number, record


def _decode(line: str) -> dict[str, Any] | None:
    """The line's record, or the whole record glued after a torn one, or None for a torn line."""
    start = 0
    while start != -1:
        try:
            record = json.loads(line[start:])
        except json.JSONDecodeError:
            start = line.find("{", start + 1)
            continue
        return record if isinstance(record, dict) else None
    return None
