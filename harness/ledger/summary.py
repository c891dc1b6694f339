"""The ledger: an account of every message, from what was sent and what was processed.

As Jepsen's queue checkers do: ``lost`` were acknowledged and never processed; ``duplicated``
were processed more than once; ``unexpected`` were processed though never sent, or sent and
refused; ``recovered`` had no answer at send time, yet were processed. A pure function of the
two ledger files, so a stored run can be judged again from its own files.
"""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from harness.ledger.files import SendOutcome

EXAMPLES = 10


@dataclass(frozen=True)
class LedgerSummary:
    acknowledged: int
    failed: int
    indeterminate: int
    processed: int  # distinct ids processed
    deliveries: int  # processings, duplicates included
    lost: int
    duplicated: int
    unexpected: int
    recovered: int
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def duplicate_rate(self) -> float:
        """Extra deliveries per distinct message processed."""
        return (self.deliveries - self.processed) / self.processed if self.processed else 0.0

    @property
    def loss_rate(self) -> float:
        return self.lost / self.acknowledged if self.acknowledged else 0.0

    def value(self, name: str) -> float:
        number: float = getattr(self, name)
        return number

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duplicate_rate"] = self.duplicate_rate
        data["loss_rate"] = self.loss_rate
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LedgerSummary:
        counts = {f.name: int(data[f.name]) for f in fields(cls) if f.name != "examples"}
        return cls(**counts, examples=dict(data.get("examples") or {}))


def summarize(sends: dict[str, SendOutcome], processed: collections.Counter[str]) -> LedgerSummary:
    by_outcome: dict[SendOutcome, set[str]] = {o: set() for o in SendOutcome}
    for message_id, outcome in sends.items():
        by_outcome[outcome].add(message_id)
    acked = by_outcome[SendOutcome.OK]
    lost = sorted(acked - processed.keys())
    duplicated = sorted(i for i, n in processed.items() if n > 1)
    unexpected = sorted(i for i in processed if i not in sends or sends[i] is SendOutcome.FAIL)
    recovered = sorted(i for i in by_outcome[SendOutcome.INFO] if i in processed)
    return LedgerSummary(
        acknowledged=len(acked),
        failed=len(by_outcome[SendOutcome.FAIL]),
        indeterminate=len(by_outcome[SendOutcome.INFO]),
        processed=len(processed),
        deliveries=sum(processed.values()),
        lost=len(lost),
        duplicated=len(duplicated),
        unexpected=len(unexpected),
        recovered=len(recovered),
        examples={
            "lost": lost[:EXAMPLES],
            "duplicated": duplicated[:EXAMPLES],
            "unexpected": unexpected[:EXAMPLES],
            "recovered": recovered[:EXAMPLES],
        },
    )
