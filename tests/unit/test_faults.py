"""Fault kinds on recording seams: what each asks of the network or the processes, and its undo.

These tests do not claim to test Toxiproxy or real processes (tests/integration does); they pin
the attributes each kind sends and that every kind undoes itself exactly once.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
from pydantic import ValidationError

from harness.faults import FAULTS, FaultTools, Releasable, Target


class Recorder:
    """Both seams at once; records every call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def add_toxic(self, link: str, name: str, kind: str, stream: str, toxicity: float,
                  attributes: dict[str, Any]) -> None:  # fmt: skip
        self.calls.append(("add", link, name, kind, stream, toxicity, attributes))

    def remove_toxic(self, link: str, name: str) -> None:
        self.calls.append(("remove", link, name))

    def set_enabled(self, link: str, enabled: bool) -> None:
        self.calls.append(("enabled", link, enabled))

    def send_signal(self, replica: str, signum: int) -> None:
        self.calls.append(("signal", replica, signal.Signals(signum).name))

    def kill(self, replica: str) -> None:
        self.calls.append(("kill", replica))

    def stop(self, replica: str) -> None:
        self.calls.append(("stop", replica))

    def start(self, replica: str) -> None:
        self.calls.append(("start", replica))


def apply(kind: str, target: Target, **fields: Any) -> tuple[Recorder, Any]:
    recorder = Recorder()
    fault = FAULTS[kind].model_validate(fields)
    return recorder, fault.apply(FaultTools(recorder, recorder), target, "f")


@pytest.mark.parametrize(
    ("kind", "fields", "toxic", "attributes"),
    [
        ("latency", {"latency": 300, "jitter": 50}, "latency", {"latency": 300, "jitter": 50}),
        ("bandwidth", {"rate": 64}, "bandwidth", {"rate": 64}),
        ("slow_close", {"delay": 500}, "slow_close", {"delay": 500}),
        ("timeout", {"timeout": 0}, "timeout", {"timeout": 0}),
        ("reset_peer", {"timeout": 100}, "reset_peer", {"timeout": 100}),
        ("limit_data", {"bytes": 1000}, "limit_data", {"bytes": 1000}),
        ("slicer", {"average_size": 8, "delay": 10}, "slicer",
         {"average_size": 8, "size_variation": 0, "delay": 10}),
        ("one_way_partition", {"stream": "upstream"}, "timeout", {"timeout": 0}),
    ],
)  # fmt: skip
def test_each_toxic_sends_toxiproxys_own_attributes_and_heals_once(
    kind: str, fields: dict[str, Any], toxic: str, attributes: dict[str, Any]
) -> None:
    recorder, applied = apply(kind, Target("worker->broker"), **fields)
    stream = fields.get("stream", "downstream")
    assert recorder.calls == [("add", "worker->broker", "f", toxic, stream, 1.0, attributes)]
    applied.heal()
    applied.heal()
    assert recorder.calls[1:] == [("remove", "worker->broker", "f")]


def test_toxicity_below_one_reaches_the_toxic() -> None:
    recorder, _ = apply("latency", Target("api->broker"), latency=10, toxicity=0.25)
    assert recorder.calls[0][5] == 0.25


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("latency", {"latecny": 300}),
        ("bandwidth", {"rate": -1}),
        ("latency", {"latency": 10, "toxicity": 1.5}),
        ("one_way_partition", {}),
    ],
)
def test_misspelt_or_out_of_range_attributes_are_refused(kind: str, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FAULTS[kind].model_validate(fields)


def test_a_partition_disables_the_proxy_until_healed() -> None:
    recorder, applied = apply("partition", Target("api->broker"))
    applied.heal()
    applied.heal()
    assert recorder.calls == [("enabled", "api->broker", False), ("enabled", "api->broker", True)]


def test_kill_restarts_its_replicas_at_heal_but_not_at_teardown() -> None:
    target = Target("worker", ("worker-0", "worker-2"))
    recorder, applied = apply("kill", target)
    assert recorder.calls == [("kill", "worker-0"), ("kill", "worker-2")]
    applied.heal()
    applied.heal()
    assert recorder.calls[2:] == [("start", "worker-0"), ("start", "worker-2")]
    recorder, applied = apply("kill", target)
    assert isinstance(applied, Releasable)
    applied.release()
    applied.heal()  # released: teardown stops every process anyway
    assert recorder.calls == [("kill", "worker-0"), ("kill", "worker-2")]


def test_restart_stops_gracefully_then_starts() -> None:
    recorder, applied = apply("restart", Target("broker", ("broker",)))
    applied.heal()
    assert recorder.calls == [("stop", "broker"), ("start", "broker")]


def test_pause_is_sigstop_then_sigcont() -> None:
    recorder, applied = apply("pause", Target("worker", ("worker-1",)))
    applied.heal()
    applied.heal()
    assert recorder.calls == [("signal", "worker-1", "SIGSTOP"), ("signal", "worker-1", "SIGCONT")]
