"""The run's state file: every fault written down before it is applied, and again once undone.

``events.jsonl`` says what happened; ``state.jsonl`` says what is in effect. The intent is on
disk before the fault touches the system, so a harness killed between the two (SIGKILL, a lost
CI runner) leaves a record of every fault that may still act, and the next ``harness down`` or
``harness run`` can say which faults it undid.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.store import RunFolder

TORN_DOWN = "torn down"


class FaultState:
    """Appends one line per change: ``applying``, then ``healed`` or a failure.

    A last line ``torn down`` says teardown ran: whatever a failed heal left, teardown's
    backstop (proxies reset, processes stopped) removed.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = RunFolder(run_dir).state

    def write(self, key: str, state: str, **detail: Any) -> None:
        self._append({"fault": key, "state": state, **detail})

    def torn_down(self, by: str) -> None:
        self._append({"state": TORN_DOWN, "by": by})

    def _append(self, line: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"t": round(time.time(), 3), **line}) + "\n")


@dataclass(frozen=True)
class InEffect:
    """A fault written down as applying and never as healed."""

    key: str
    kind: str
    target: str
    replicas: tuple[str, ...]

    def __str__(self) -> str:
        where = f"{self.target} {', '.join(self.replicas)}" if self.replicas else self.target
        return f"{self.key} ({self.kind} on {where})"


def in_effect(run_dir: Path) -> list[InEffect]:
    """Faults of a run that may still act, oldest first; a half-written last line is ignored."""
    last: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(OSError):
        for line in RunFolder(run_dir).state.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    continue
                if entry.get("state") == TORN_DOWN:
                    last.clear()
                elif "fault" in entry:
                    last[str(entry["fault"])] = last.get(str(entry["fault"]), {}) | entry
    return [
        InEffect(key, str(e.get("kind")), str(e.get("target")), tuple(e.get("replicas", ())))
        for key, e in last.items()
        if e.get("state") != "healed"
    ]
