"""The timeline's plan, and the scheduler that applies and heals faults on it.

Faults act through a hand-written fake ``Toxics`` that records its calls: this is the seam, and
these tests do not claim to test Toxiproxy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.faults import FaultTools, Target
from harness.faults.network import AppliedToxic, Latency
from harness.journal import EventLog
from harness.state import FaultState, in_effect
from harness.timeline import Action, FaultStep, Scheduler, plan


class RecordingToxics:
    """Records every call; refuses to add a toxic on the links in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.calls: list[tuple[Any, ...]] = []

    def add_toxic(
        self,
        link: str,
        name: str,
        kind: str,
        stream: str,
        toxicity: float,
        attributes: dict[str, Any],
    ) -> None:
        if link in self.refuse:
            raise RuntimeError(f"proxy {link} refused the toxic")
        self.calls.append(("add", link, name, kind, stream, toxicity, attributes))

    def remove_toxic(self, link: str, name: str) -> None:
        self.calls.append(("remove", link, name))

    def set_enabled(self, link: str, enabled: bool) -> None:
        self.calls.append(("enabled", link, enabled))


class NoProcesses:
    """These steps act on links only; any process call is a bug in the test."""

    def send_signal(self, replica: str, signum: int) -> None:
        raise AssertionError(replica)

    kill = stop = start = send_signal  # type: ignore[assignment]


def tools(toxics: RecordingToxics) -> FaultTools:
    return FaultTools(toxics, NoProcesses(), None)  # type: ignore[arg-type]


def step(label: str, at_s: float, for_s: float, link: str = "worker->broker") -> FaultStep:
    return FaultStep(
        label, 1, "latency", at_s, for_s, Target(link), Latency(latency=300, jitter=50)
    )


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    events = EventLog(tmp_path / "events.jsonl")
    yield events
    events.close()


def started(steps: list[FaultStep], toxics: RecordingToxics, log: EventLog) -> Scheduler:
    """A scheduler started now, with what is due at once already applied."""
    scheduler = Scheduler(steps, tools(toxics), log, FaultState(log.path.parent))
    scheduler.start()
    scheduler.run_due()
    return scheduler


def journaled(log: EventLog) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.path.read_text().splitlines()]


# -------------------------------------------------------------------- plan


def test_plan_orders_applies_and_heals_by_time() -> None:
    late, early = step("late", 30, 5), step("early", 0, 10)
    actions = [(s.t_s, s.action, s.step.label) for s in plan([late, early])]
    assert actions == [
        (0, Action.APPLY, "early"),
        (10, Action.HEAL, "early"),
        (30, Action.APPLY, "late"),
        (35, Action.HEAL, "late"),
    ]


def test_plan_heals_before_it_applies_at_the_same_instant() -> None:
    first, second = step("first", 0, 10), step("second", 10, 5, link="api->broker")
    actions = [(s.t_s, s.action, s.step.label) for s in plan([second, first])]
    assert actions[1:3] == [(10, Action.HEAL, "first"), (10, Action.APPLY, "second")]


def test_plan_of_no_steps_is_empty() -> None:
    assert plan([]) == []


# --------------------------------------------------------------- scheduler


def test_a_fault_due_at_zero_is_applied_on_the_first_run_due(log: EventLog) -> None:
    toxics = RecordingToxics()
    scheduler = started([step("slow-link", 0, 20)], toxics, log)
    attributes = {"latency": 300, "jitter": 50}
    assert toxics.calls == [
        ("add", "worker->broker", "slow-link", "latency", "downstream", 1.0, attributes)
    ]
    assert list(scheduler.applied) == ["slow-link"]
    assert [(s.action, s.t_s) for s in scheduler.pending] == [(Action.HEAL, 20)]
    assert scheduler.next_due() == pytest.approx(scheduler.start_monotonic + 20)


def test_an_apply_is_journaled_with_outcome_ok(log: EventLog) -> None:
    started([step("slow-link", 0, 20)], RecordingToxics(), log)
    [event] = journaled(log)
    assert (event["kind"], event["target"], event["outcome"]) == (
        "fault.apply",
        "worker->broker",
        "ok",
    )
    assert event["value"]["fault"] == "latency"
    assert event["value"]["label"] == "slow-link"
    assert (event["value"]["latency"], event["value"]["jitter"]) == (300, 50)
    assert event["value"]["late_s"] >= 0
    assert event["t_invoke"] <= event["t_complete"]


def test_nothing_is_due_before_its_time(log: EventLog) -> None:
    toxics = RecordingToxics()
    started([step("later", 3600, 10)], toxics, log)
    assert toxics.calls == []
    assert journaled(log) == []


def test_run_due_applies_and_heals_everything_past_due_in_plan_order(log: EventLog) -> None:
    toxics = RecordingToxics()
    steps = [step("a", 0, 10), step("b", 10, 5, link="api->broker")]
    scheduler = Scheduler(steps, tools(toxics), log, FaultState(log.path.parent))
    scheduler.start_monotonic = time.monotonic() - 60  # as if the run started a minute ago
    scheduler.run_due()
    assert [call[:3] for call in toxics.calls] == [
        ("add", "worker->broker", "a"),
        ("remove", "worker->broker", "a"),
        ("add", "api->broker", "b"),
        ("remove", "api->broker", "b"),
    ]
    assert [(e["kind"], e["value"]["label"]) for e in journaled(log)] == [
        ("fault.apply", "a"),
        ("fault.heal", "a"),
        ("fault.apply", "b"),
        ("fault.heal", "b"),
    ]
    assert scheduler.applied == {}
    assert scheduler.next_due() is None


def test_a_fault_that_cannot_be_applied_is_journaled_as_failed(log: EventLog) -> None:
    toxics = RecordingToxics(refuse=("worker->broker",))
    scheduler = started([step("slow-link", 0, 20)], toxics, log)
    [event] = journaled(log)
    assert (event["kind"], event["outcome"]) == ("fault.apply", "fail")
    assert event["value"]["error"] == "proxy worker->broker refused the toxic"
    assert scheduler.applied == {}
    scheduler.heal_all()
    assert toxics.calls == []
    assert len(journaled(log)) == 1


def test_heal_all_heals_what_is_applied_once_and_drops_pending(log: EventLog) -> None:
    toxics = RecordingToxics()
    steps = [step("now", 0, 20), step("later", 3600, 10, link="api->broker")]
    scheduler = started(steps, toxics, log)
    scheduler.heal_all()
    scheduler.heal_all()
    scheduler.run_due()
    assert [call[:3] for call in toxics.calls] == [
        ("add", "worker->broker", "now"),
        ("remove", "worker->broker", "now"),
    ]
    assert scheduler.pending == []
    assert scheduler.next_due() is None
    heal = journaled(log)[-1]
    assert (heal["kind"], heal["outcome"], heal["value"]) == (
        "fault.heal",
        "ok",
        {"fault": "latency", "label": "now", "occurrence": 1, "at_teardown": True},
    )


def test_applied_toxic_heal_is_idempotent() -> None:
    toxics = RecordingToxics()
    applied = Latency(latency=100).apply(tools(toxics), Target("api->broker"), "slow")
    assert isinstance(applied, AppliedToxic)
    applied.heal()
    applied.heal()
    assert toxics.calls[1:] == [("remove", "api->broker", "slow")]
    assert applied.healed


def test_heal_all_undoes_overlapping_faults_newest_first(log: EventLog) -> None:
    toxics = RecordingToxics()
    steps = [step("first", 0, 20), step("second", 0, 20, link="api->broker")]
    scheduler = started(steps, toxics, log)
    scheduler.heal_all()
    assert [call[:3] for call in toxics.calls] == [
        ("add", "worker->broker", "first"),
        ("add", "api->broker", "second"),
        ("remove", "api->broker", "second"),
        ("remove", "worker->broker", "first"),
    ]


# ------------------------------------------------------------- state file


class CheckingToxics(RecordingToxics):
    """Asserts, as each toxic is added, that the state file already names it."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir

    def add_toxic(self, link: str, name: str, *rest: Any) -> None:
        assert [f.key for f in in_effect(self.run_dir)] == [name]
        super().add_toxic(link, name, *rest)


def test_a_fault_is_in_the_state_file_before_it_is_applied(log: EventLog) -> None:
    toxics = CheckingToxics(log.path.parent)
    scheduler = started([step("slow-link", 0, 20)], toxics, log)
    assert toxics.calls, "the toxic was never added"
    [fault] = in_effect(log.path.parent)
    assert str(fault) == "slow-link (latency on worker->broker)"
    scheduler.heal_all()
    assert in_effect(log.path.parent) == []


def test_a_failed_apply_stays_in_effect_until_teardown_ran(log: EventLog) -> None:
    """Half an apply may have acted: only teardown's backstop settles it."""
    started([step("slow-link", 0, 20)], RecordingToxics(refuse=("worker->broker",)), log)
    assert [f.key for f in in_effect(log.path.parent)] == ["slow-link"]
    FaultState(log.path.parent).torn_down("teardown")
    assert in_effect(log.path.parent) == []


def test_a_half_written_last_line_is_ignored(tmp_path: Path) -> None:
    state = FaultState(tmp_path)
    state.write("hang", "applying", kind="pause", target="worker", replicas=["worker-1"])
    with state.path.open("a") as handle:
        handle.write('{"t": 1, "fault": "hang", "sta')
    [fault] = in_effect(tmp_path)
    assert str(fault) == "hang (pause on worker worker-1)"


def test_a_control_run_journals_each_action_as_skipped_and_applies_nothing(
    log: EventLog, tmp_path: Path
) -> None:
    """--control: the faults' times are kept (their moments, their windows), nothing acts."""
    toxics = RecordingToxics()
    state = FaultState(log.path.parent)
    scheduler = Scheduler([step("slow-link", 0, 10)], tools(toxics), log, state, skip=True)
    scheduler.start_monotonic = time.monotonic() - 60
    scheduler.run_due()
    scheduler.heal_all()
    assert toxics.calls == []
    assert scheduler.applied == {}
    assert in_effect(tmp_path) == []
    events = journaled(log)
    assert [(e["kind"], e["outcome"], e["value"]["at"]) for e in events] == [
        ("fault.skipped", "info", "apply"),
        ("fault.skipped", "info", "heal"),
    ]
    assert events[0]["value"]["label"] == "slow-link"
