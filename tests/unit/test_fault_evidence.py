"""Evidence that a fault took effect, from hand-written journals, ledgers and traffic samples:
the bytes through a link while a toxic was on it (before a partition), a replica's work at
the moment it was stopped, and the check that ``require_effect`` adds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checks import evaluate
from harness.checks.base import Evidence
from harness.checks.effect import EffectCheck
from harness.faults.evidence import Effect, effects
from harness.journal import Event, Outcome
from harness.loader import load_experiment
from harness.observe.traffic import moved
from harness.topology import TopologySpec
from tests.unit.test_ledger_io import write_lines

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = TopologySpec.model_validate(
    {
        "name": "t",
        "queue": "jobs",
        "components": {
            name: {"command": ["true"]} for name in ("api", "broker", "worker", "probe")
        },
        "links": ["api->broker", "worker->broker"],
        "load": {"component": "api"},
    }
)


def applied(
    label: str, kind: str, target: str, at: float, until: float, **extra: object
) -> list[Event]:
    value = {"fault": kind, "label": label, "occurrence": 1, **extra}
    return [
        Event("fault.apply", target, at, at, Outcome.OK, value),
        Event("fault.heal", target, until, until, Outcome.OK, value),
    ]


def traffic(path: Path, *samples: tuple[float, dict[str, float] | None]) -> Path:
    return write_lines(
        path,
        *[
            {"t": t, "bytes": b} if b is not None else {"t": t, "error": "ss: no"}
            for t, b in samples
        ],
    )


def judged(
    tmp_path: Path, events: list[Event], deliveries: list[dict[str, object]] = ()
) -> list[Effect]:  # type: ignore[assignment]
    samples = traffic(
        tmp_path / "traffic.jsonl",
        (9.0, {"api->broker": 100, "worker->broker": 0}),
        (10.0, {"api->broker": 500, "worker->broker": 0}),
        (15.0, {"api->broker": 900, "worker->broker": 0}),
        (21.0, {"api->broker": 900, "worker->broker": 0}),
    )
    ledger = write_lines(tmp_path / "processed.jsonl", *deliveries)
    return effects(events, TOPOLOGY, ledger, samples)


def test_a_toxic_took_effect_when_bytes_crossed_its_link_while_it_was_on(tmp_path: Path) -> None:
    used, unused = judged(
        tmp_path,
        [
            *applied("slow", "latency", "api->broker", 10, 15),
            *applied("idle", "latency", "worker->broker", 10, 15),
        ],
    )
    assert (used.bit, used.evidence) == (True, "400 B crossed the link while it was in effect")
    assert (unused.bit, unused.evidence) == (
        False,
        "no traffic crossed the link while it was in effect",
    )


def test_a_partition_took_effect_when_its_link_was_in_use_just_before(tmp_path: Path) -> None:
    """Nothing crosses a disabled proxy: the link's use in the 5 s before it is the evidence."""
    [cut] = judged(tmp_path, applied("cut", "partition", "api->broker", 15, 20))
    assert (cut.bit, cut.evidence) == (True, "400 B crossed the link in the 5 s before it")


def test_a_fault_on_a_replica_took_effect_when_it_had_work_in_hand(tmp_path: Path) -> None:
    deliveries = [
        {"id": "a", "start": 9.5, "t": 12.0, "consumer": "worker-0"},  # held across the pause
        {"id": "b", "start": 2.0, "t": 3.0, "consumer": "worker-1"},  # long before
    ]
    busy, idle = judged(
        tmp_path,
        [
            *applied("hang", "pause", "worker", 10, 11, replicas=["worker-0"]),
            *applied("hang2", "pause", "worker", 10, 11, replicas=["worker-1"]),
        ],
        deliveries,
    )
    assert (busy.bit, busy.evidence) == (
        True, "worker-0 had 1 processings in progress or done in the 5 s before"
    )  # fmt: skip
    assert (idle.bit, idle.evidence) == (
        False, "worker-1: no processing in progress or done in the 5 s before"
    )  # fmt: skip


def test_a_component_the_ledger_does_not_name_is_judged_by_its_links(tmp_path: Path) -> None:
    broker, probe = judged(
        tmp_path,
        [*applied("crash", "kill", "broker", 15, 16), *applied("blind", "kill", "probe", 15, 16)],
    )
    assert (broker.bit, broker.evidence) == (
        True, "400 B crossed api->broker, worker->broker in the 5 s before"
    )  # fmt: skip
    assert broker.describe().startswith("kill on broker: ")
    assert probe.bit is None and "no link reaches it" in probe.evidence


def test_unread_traffic_cannot_tell_and_a_failed_apply_has_no_evidence(tmp_path: Path) -> None:
    failed = Event(
        "fault.apply",
        "api->broker",
        10,
        10,
        Outcome.FAIL,
        {"fault": "latency", "label": "x", "occurrence": 1},
    )
    [told] = effects(
        [failed, *applied("slow", "latency", "api->broker", 10, 15)],
        TOPOLOGY,
        tmp_path / "none.jsonl",
        traffic(tmp_path / "t.jsonl", (9.0, None), (16.0, None)),
    )
    assert told.bit is None and "traffic was not read" in told.evidence


def test_moved_reads_from_the_sample_before_to_the_sample_after(tmp_path: Path) -> None:
    path = traffic(
        tmp_path / "t.jsonl", (1.0, {"a->b": 5}), (2.0, {"a->b": 7}), (3.0, {"a->b": 10})
    )
    with path.open("a") as out:
        out.write('{"t": 4.0, "by')  # torn by a killed harness
    assert moved(path, "a->b", 1.5, 2.5) == 5  # samples at 1 and 3
    assert moved(path, "a->b", 2.0, 2.0) == 3
    assert moved(path, "a->b", 0.5, 2.0) is None  # no sample before
    assert moved(path, "a->b", 2.0, 9.0) is None  # none after
    assert moved(tmp_path / "missing", "a->b", 1, 2) is None


def effect(label: str, bit: bool | None, occurrence: int = 1) -> Effect:
    return Effect(label, occurrence, "pause", "worker", bit, "evidence" if bit else "none")


@pytest.mark.parametrize(
    ("found", "verdict", "observed"),
    [
        (
            [effect("hang", False), effect("hang", True, 2)],
            "held",
            "1 of 2 took effect: pause on worker: evidence",
        ),
        (
            [effect("hang", False), effect("hang", None, 2)],
            "inconclusive",
            "pause on worker: none; pause on worker: none",
        ),
        (
            [effect("other", True)],
            "inconclusive",
            "the journal records no effect of hang: it was never applied, or the run was made "
            "before faults' effects were recorded",
        ),
    ],
)
def test_a_fault_that_must_take_effect_holds_once_any_occurrence_did(
    found: list[Effect], verdict: str, observed: str
) -> None:
    result = evaluate(EffectCheck.of("hang"), Evidence(None, {}, None, effects=found))
    assert (result.name, result.verdict.value, result.observed) == (
        "the fault hang took effect",
        verdict,
        observed,
    )


def test_effects_survive_the_journal() -> None:
    found = effect("hang", None)
    event = Event("fault.effect", found.target, 1, 1, found.outcome(), found.value())
    assert Effect.of_event(Event.from_json(json.loads(json.dumps(event.to_json())))) == found
    assert found.outcome() is Outcome.INFO


def test_every_shipped_experiment_with_faults_requires_their_effect() -> None:
    for path in sorted([*REPO.glob("experiments/*.yaml"), *REPO.glob("experiments/*/*.yaml")]):
        experiment = load_experiment(path, stand_in=True)
        assert all(entry.require_effect for entry in experiment.faults), path


def test_a_fault_may_opt_out_of_the_experiments_require_effect(tmp_path: Path) -> None:
    text = (REPO / "experiments" / "slow-consumer.yaml").read_text()
    text = text.replace(
        "latency: 300, jitter: 50}", "latency: 300, jitter: 50, require_effect: false}"
    )
    path = tmp_path / "experiments" / "e.yaml"
    path.parent.mkdir()
    path.write_text(text)
    (tmp_path / "targets").symlink_to(REPO / "targets")
    [entry] = load_experiment(path).faults
    assert entry.require_effect is False
