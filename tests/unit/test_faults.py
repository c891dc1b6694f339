"""Fault kinds on recording seams: what each asks of the network or the processes, and its undo.

These tests do not claim to test Toxiproxy or real processes (tests/integration does); they pin
the attributes each kind sends and that every kind undoes itself exactly once.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from harness.faults import FAULTS, FaultTools, Releasable, Target
from harness.faults.command import Declared


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

    def lose(self, link: str, share: float) -> None:
        self.calls.append(("lose", link, share))

    def restore(self, link: str) -> None:
        self.calls.append(("restore", link))

    def run(
        self, argv: Sequence[str], replica: str, settings: Mapping[str, str], timeout_s: float
    ) -> None:
        self.calls.append(("run", tuple(argv), replica, dict(settings), timeout_s))

    def send_signal(self, replica: str, signum: int) -> None:
        self.calls.append(("signal", replica, signal.Signals(signum).name))

    def kill(self, replica: str) -> None:
        self.calls.append(("kill", replica))

    def stop(self, replica: str) -> None:
        self.calls.append(("stop", replica))

    def start(self, replica: str) -> None:
        self.calls.append(("start", replica))

    def cut(self, replica: str, share: float = 1.0) -> None:
        self.calls.append(("cut", replica, share))

    def rejoin(self, replica: str) -> None:
        self.calls.append(("rejoin", replica))

    def limit(self, replica: str, cpus: float | None, memory: int | None) -> None:
        self.calls.append(("limit", replica, cpus, memory))

    def unlimit(self, replica: str) -> None:
        self.calls.append(("unlimit", replica))

    def stress(self, replica: str, workers: int) -> None:
        self.calls.append(("stress", replica, workers))

    def unstress(self, replica: str) -> None:
        self.calls.append(("unstress", replica))


def apply(kind: str, target: Target, **fields: Any) -> tuple[Recorder, Any]:
    recorder = Recorder()
    fault = FAULTS[kind].model_validate(fields)
    return recorder, fault.apply(FaultTools(recorder, recorder, recorder), target, "f")


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


@pytest.mark.parametrize(
    ("kind", "fields", "applied", "undone"),
    [
        ("cut", {}, ("cut", 1.0), "rejoin"),
        ("packet_loss", {"loss": 20}, ("cut", 0.2), "rejoin"),
        ("cpu_limit", {"cpus": 0.1}, ("limit", 0.1, None), "unlimit"),
        ("memory_limit", {"memory": "64MiB"}, ("limit", None, 64 * 2**20), "unlimit"),
        ("cpu_stress", {"workers": 2}, ("stress", 2), "unstress"),
    ],
)  # fmt: skip
def test_each_container_fault_acts_on_every_replica_and_undoes_it_once(
    kind: str, fields: dict[str, Any], applied: tuple[Any, ...], undone: str
) -> None:
    recorder, handle = apply(kind, Target("worker", ("worker-0", "worker-1")), **fields)
    action, *arguments = applied
    assert recorder.calls == [(action, r, *arguments) for r in ("worker-0", "worker-1")]
    handle.heal()
    handle.heal()
    assert recorder.calls[2:] == [(undone, "worker-0"), (undone, "worker-1")]


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("packet_loss", {"loss": 0}, "greater than 0"),
        ("packet_loss", {"loss": 120}, "less than or equal to 100"),
        ("cpu_limit", {"cpus": 0}, "greater than or equal to 0.01"),
        ("memory_limit", {"memory": "64 parsecs"}, "expected a size such as 64MiB"),
        ("memory_limit", {"memory": "1KiB"}, "a size is between 4MiB and 1TiB"),
        ("cpu_stress", {"workers": 0}, "greater than or equal to 1"),
    ],
)  # fmt: skip
def test_container_faults_refuse_what_the_engine_cannot_do(
    kind: str, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        FAULTS[kind].model_validate(fields)


@pytest.mark.parametrize(
    ("written", "size"),
    [("64MiB", 64 * 2**20), ("256m", 256 * 2**20), ("1GiB", 2**30), ("1.5g", 3 * 2**29),
     (8_388_608, 8_388_608), ("512 MB", 512 * 2**20)],
)  # fmt: skip
def test_a_memory_limit_is_written_as_the_engine_counts_it(written: Any, size: int) -> None:
    assert FAULTS["memory_limit"].model_validate({"memory": written}).memory == size  # type: ignore[attr-defined]


def test_link_loss_drops_a_share_of_the_links_packets_until_healed() -> None:
    recorder, handle = apply("link_loss", Target("worker->sink"), loss=40)
    handle.heal()
    handle.heal()
    assert recorder.calls == [("lose", "worker->sink", 0.4), ("restore", "worker->sink")]


def test_a_targets_own_fault_runs_its_commands_per_replica_and_heals_once() -> None:
    recorder = Recorder()
    fault = Declared(
        name="write_pause", vars={"mode": "ALL"}, apply_argv=("pause", "{var:mode}"),
        heal_argv=("unpause",), timeout_s=5.0,
    )  # fmt: skip
    handle = fault.apply(
        FaultTools(recorder, recorder, recorder), Target("broker", ("broker-0", "broker-1")), "f"
    )
    handle.heal()
    handle.heal()
    assert recorder.calls == [
        ("run", ("pause", "{var:mode}"), "broker-0", {"mode": "ALL"}, 5.0),
        ("run", ("pause", "{var:mode}"), "broker-1", {"mode": "ALL"}, 5.0),
        ("run", ("unpause",), "broker-0", {"mode": "ALL"}, 5.0),
        ("run", ("unpause",), "broker-1", {"mode": "ALL"}, 5.0),
    ]
    # The journal shows its name and settings, not the commands the target file holds.
    assert fault.model_dump() == {"name": "write_pause", "vars": {"mode": "ALL"}}


def test_every_fault_kind_has_its_row_in_the_fault_reference() -> None:
    reference = (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()
    rows = {line.split("|")[1].strip() for line in reference.splitlines() if line.startswith("| `")}
    assert {f"`{kind}`" for kind in FAULTS} <= rows
