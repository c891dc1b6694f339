"""The run's history: one event shape for load, faults and phases, persisted as it happens,
and the journal: the whole run, as ``journal.json`` holds it and everything reads it back.

Every happening is appended to ``events.jsonl`` the moment it completes, before anything is
judged, so a crashed or interrupted run still leaves its history behind (Jepsen's save-1).
``journal.json`` is written once at the end, from the same events plus the judgement. The
reports, the CLI and the pytest plugin read a ``Journal`` by attribute; only this module knows
the file's keys. ``journal_version`` in the file says which shape it has; a journal without
one is of version 1, the shape before the field existed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from harness.errors import SpecError
from harness.ledger import LedgerSummary
from harness.store import RunFolder
from harness.verdict import Verdict

JOURNAL_VERSION = 2
# The fields of a run in ``harness run --json``.
BRIEF = (
    "experiment", "target", "verdict", "reason", "run_dir", "seed", "checks", "ledger", "control"
)  # fmt: skip


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

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        return cls(
            str(data["kind"]), str(data["target"]), float(data["t_invoke"]),
            float(data["t_complete"]), Outcome(data["outcome"]), dict(data.get("value") or {}),
        )  # fmt: skip


@dataclass(frozen=True)
class CheckResult:
    """One check's judgement, as the verdict table, JUnit and the journal give it."""

    name: str
    kind: str
    verdict: Verdict
    expected: str
    observed: str
    # Unix times the check looked at (its moment, or its window's edges), for the charts.
    at: tuple[float, ...] = ()
    note: str | None = None  # what the verdict must be read with: the host was saturated

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict.value,
            "expected": self.expected,
            "observed": self.observed,
            "at": list(self.at),
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            str(data["name"]), str(data.get("kind", "")), Verdict(data["verdict"]),
            str(data["expected"]), str(data.get("observed", "")),
            tuple(float(t) for t in data.get("at") or ()), data.get("note"),
        )  # fmt: skip


@dataclass(frozen=True)
class ControlLink:
    """A faulted run's control run (``harness run --control``): the same experiment, seed and
    load with the faults skipped. ``unmoved``: the checks that held in both runs with the same
    observed value, which the faults did not move."""

    run_id: str
    run_dir: str
    verdict: Verdict
    unmoved: tuple[str, ...] = ()

    @classmethod
    def of(cls, control: Journal, checks: Sequence[CheckResult]) -> ControlLink:
        held = {c.name: c.observed for c in control.checks if c.verdict is Verdict.HELD}
        same = [
            c.name for c in checks if c.verdict is Verdict.HELD and held.get(c.name) == c.observed
        ]
        return cls(control.run_id, control.run_dir, control.verdict, tuple(same))

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "verdict": self.verdict.value,
            "unmoved": list(self.unmoved),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ControlLink:
        return cls(
            str(data["run_id"]), str(data["run_dir"]), Verdict(data["verdict"]),
            tuple(str(name) for name in data.get("unmoved") or ()),
        )  # fmt: skip


@dataclass(frozen=True)
class Journal:
    """A finished run: what ran, where, its verdict and why, each check, every event, the
    ledger, and what each process cost. ``to_json`` is ``journal.json``."""

    run_id: str
    run_dir: str
    experiment: str
    verdict: Verdict
    checks: tuple[CheckResult, ...] = ()
    reason: str | None = None
    experiment_file: str = ""
    target: str = ""
    deployer: str = "local"
    observers: str = "host"
    target_file: str = ""
    overrides: tuple[str, ...] = ()
    seed: int | None = None
    started_at: str = ""
    ended_at: str = ""
    duration_s: float = 0.0
    moments: dict[str, float] = field(default_factory=dict)
    timeline: tuple[Event, ...] = ()
    ledger: LedgerSummary | None = None
    load: dict[str, Any] = field(default_factory=dict)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    harness_cpu_s: float | None = None
    cleanup_errors: tuple[str, ...] = ()
    faults_skipped: bool = False  # a control run's
    control: ControlLink | None = None  # a faulted run's control run
    journal_version: int = JOURNAL_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "journal_version": self.journal_version,
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "experiment": self.experiment,
            "experiment_file": self.experiment_file,
            "target": self.target,
            "deployer": self.deployer,
            "observers": self.observers,
            "target_file": self.target_file,
            "overrides": list(self.overrides),
            "seed": self.seed,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "checks": [c.to_json() for c in self.checks],
            "moments": self.moments,
            "timeline": [e.to_json() for e in self.timeline],
            "ledger": self.ledger.to_json() if self.ledger else None,
            "load": self.load,
            "components": self.components,
            "harness_cpu_s": self.harness_cpu_s,
            "cleanup_errors": list(self.cleanup_errors),
            "faults_skipped": self.faults_skipped,
            "control": self.control.to_json() if self.control else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Journal:
        """A journal from its JSON form; what is missing takes its default (an older journal,
        or a part of one in a test)."""
        ledger = data.get("ledger")
        return cls(
            run_id=str(data.get("run_id", "")),
            run_dir=str(data.get("run_dir", "")),
            experiment=str(data.get("experiment", "")),
            verdict=Verdict(data["verdict"]),
            checks=tuple(CheckResult.from_json(c) for c in data.get("checks") or ()),
            reason=data.get("reason"),
            experiment_file=str(data.get("experiment_file", "")),
            target=str(data.get("target", "")),
            deployer=str(data.get("deployer", "local")),
            observers=str(data.get("observers", "host")),
            target_file=str(data.get("target_file", "")),
            overrides=tuple(data.get("overrides") or ()),
            seed=data.get("seed"),
            started_at=str(data.get("started_at", "")),
            ended_at=str(data.get("ended_at", "")),
            duration_s=float(data.get("duration_s") or 0.0),
            moments={str(k): float(v) for k, v in (data.get("moments") or {}).items()},
            timeline=tuple(Event.from_json(e) for e in data.get("timeline") or ()),
            ledger=LedgerSummary.from_json(ledger) if ledger else None,
            load=dict(data.get("load") or {}),
            components=dict(data.get("components") or {}),
            harness_cpu_s=data.get("harness_cpu_s"),
            cleanup_errors=tuple(data.get("cleanup_errors") or ()),
            faults_skipped=bool(data.get("faults_skipped")),
            control=ControlLink.from_json(control) if (control := data.get("control")) else None,
            journal_version=int(data.get("journal_version", 1)),
        )

    @property
    def folder(self) -> Path:
        return Path(self.run_dir)

    def __getitem__(self, key: str) -> Any:
        """A field as ``journal.json`` has it (``journal["ledger"]["lost"]``): what code written
        when ``RunResult.journal`` was that dict reads. The harness itself reads attributes."""
        return self.to_json()[key]

    def brief(self) -> dict[str, Any]:
        """What ``harness run --json`` gives of each run."""
        whole = self.to_json()
        return {key: whole[key] for key in BRIEF}


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


def read_journal(run_dir: Path) -> Journal:
    """A finished run's journal; a folder without one is bad input, not a crash."""
    path = RunFolder(run_dir).journal
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(str(path), None, "", "no journal here; is this a run folder?") from None
    except (OSError, ValueError) as exc:
        raise SpecError(str(path), None, "", f"cannot read the journal: {exc}") from None
    _check_shape(str(path), data)
    try:
        return Journal.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SpecError(str(path), None, "", f"cannot read the journal: {exc!r}") from None


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
