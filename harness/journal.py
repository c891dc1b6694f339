"""The run's history: one event shape for load, faults and phases, persisted as it happens.

Every happening is appended to ``events.jsonl`` the moment it completes, before anything is
judged, so a crashed or interrupted run still leaves its history behind (Jepsen's save-1).
``journal.json`` is written once at the end, from the same events plus the judgement.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from harness.errors import SpecError
from harness.verdict import Verdict


class Outcome(Enum):
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True)
class Event:
    """One happening: ``kind`` such as ``fault.apply``; times are unix seconds."""

    kind: str
    target: str
    t_invoke: float
    t_complete: float
    outcome: Outcome
    value: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data


class EventLog:
    """Appends events to ``events.jsonl`` as they complete; safe from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[Event] = []
        self._lock = threading.Lock()
        # Told of every event once it is on disk (Grafana's annotations); must not block.
        self.listeners: list[Callable[[Event], None]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    def record(self, event: Event) -> Event:
        with self._lock:
            self.events.append(event)
            self._file.write(json.dumps(event.to_json()) + "\n")
            self._file.flush()
        for listener in self.listeners:
            listener(event)
        return event

    def now(
        self,
        kind: str,
        target: str,
        outcome: Outcome = Outcome.INFO,
        t_invoke: float | None = None,
        **value: Any,
    ) -> Event:
        """Record an event that completes now (started at ``t_invoke`` if given)."""
        t = time.time()
        return self.record(
            Event(kind, target, t if t_invoke is None else t_invoke, t, outcome, value)
        )

    def close(self) -> None:
        with self._lock:
            self._file.close()


def write_json(path: Path, data: Any) -> None:
    """Write through a temporary file so a reader never sees half a journal."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_journal(run_dir: Path) -> dict[str, Any]:
    """A finished run's journal; a folder without one is bad input, not a crash."""
    path = run_dir / "journal.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(str(path), None, "", "no journal here; is this a run folder?") from None
    except (OSError, ValueError) as exc:
        raise SpecError(str(path), None, "", f"cannot read the journal: {exc}") from None
    _check_shape(str(path), data)
    return data


def _check_shape(path: str, data: Any) -> None:
    """What reading a journal back relies on, so that a hand-edited or foreign file is one
    message rather than a traceback."""
    if not isinstance(data, dict):
        raise SpecError(path, None, "", f"a journal is a JSON object, not a {type(data).__name__}")
    verdicts = [v.value for v in Verdict]
    if data.get("verdict") not in verdicts:
        raise SpecError(
            path, None, "verdict", f"{data.get('verdict')!r} is not one of {', '.join(verdicts)}"
        )
    checks = data.get("checks")
    if not isinstance(checks, list):
        raise SpecError(path, None, "checks", "a journal has a list of checks")
    for index, check in enumerate(checks):
        if not isinstance(check, dict):
            raise SpecError(path, None, f"checks[{index}]", "a check is a JSON object")
        for key in ("name", "verdict", "expected"):
            if not isinstance(check.get(key), str):
                raise SpecError(path, None, f"checks[{index}].{key}", "missing, or not text")
        if check["verdict"] not in verdicts:
            raise SpecError(
                path, None, f"checks[{index}].verdict", f"{check['verdict']!r} is not a verdict"
            )
    for key in ("run_id", "run_dir"):
        if not isinstance(data.get(key), str):
            raise SpecError(path, None, key, "missing, or not text")
