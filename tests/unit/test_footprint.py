"""The CPU footprint of a run's processes, Locust's saturation and the host's, from scripted
CPU readings.

The readings are scripted so that the arithmetic is tested without depending on how busy the
machine is; one test reads a real process's CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.observe import footprint
from harness.observe.footprint import Footprint, HostLoad, HostSpan, tree_cpu_s

T0 = 1_700_000_000.0


@pytest.fixture
def readings(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """CPU seconds the next readings return, in order."""
    script: list[float] = []
    monkeypatch.setattr(footprint, "tree_cpu_s", lambda process: script.pop(0))
    return script


def test_saturation_spans_the_samples_over_90_percent_of_a_core(readings: list[float]) -> None:
    meter = Footprint(lambda: {"load": os.getpid()})
    # one reading a second: 0.2 s, then 0.95 s of CPU per second twice, then 0.5 s
    readings.extend([1.0, 1.2, 2.15, 3.1, 3.6])
    for i in range(5):
        meter.sample(T0 + i)
    assert meter.saturated == [(T0 + 1, T0 + 3)]
    assert meter.cpu_s("load") == 3.6


def test_samples_closer_than_a_second_are_skipped_unless_forced(readings: list[float]) -> None:
    meter = Footprint(lambda: {"load": os.getpid()})
    readings.extend([1.0, 2.0])
    meter.sample(T0)
    meter.sample(T0 + 0.5)
    assert meter.cpu_s("load") == 1.0
    meter.sample(T0 + 0.6, force=True)
    assert meter.cpu_s("load") == 2.0


def test_a_restarted_replica_keeps_the_cpu_of_its_earlier_life(readings: list[float]) -> None:
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pids: dict[str, int | None] = {"worker-1": os.getpid(), "gone": None}
        meter = Footprint(lambda: pids)
        readings.extend([4.0, 0.5])
        meter.sample(T0)
        pids["worker-1"] = first.pid  # killed and started again: a new pid
        meter.sample(T0 + 1)
        assert meter.cpu_s("worker-1") == 4.5
        assert meter.cpu_s("gone") is None
    finally:
        first.kill()
        first.wait()


def test_tree_cpu_counts_a_child_that_works() -> None:
    import psutil

    busy = subprocess.Popen([sys.executable, "-c", "sum(range(30_000_000))"])
    process = psutil.Process(busy.pid)
    last = 0.0
    while busy.poll() is None:
        last = max(last, tree_cpu_s(process))
    assert last > 0.0


class Host:
    """A host's CPU read once a second from T0; each second busy the given share of its cores."""

    def __init__(self, cores: int = 2) -> None:
        self.load = HostLoad(cores)
        self.cores, self.t, self.idle, self.total = cores, T0, 0.0, 0.0
        self.load.add(self.t, self.idle, self.total)

    def busy(self, *shares: float) -> HostLoad:
        for share in shares:
            self.t += 1
            self.total += self.cores
            self.idle += self.cores * (1 - share)
            self.load.add(self.t, self.idle, self.total)
        return self.load


def test_three_seconds_at_95_percent_of_every_core_are_a_span() -> None:
    assert Host().busy(0.5, 0.95, 1.0, 0.97, 0.6).spans == [HostSpan(T0 + 1, T0 + 4, 0.97, 2)]


def test_under_95_percent_or_under_three_seconds_is_no_span() -> None:
    assert Host().busy(0.94, 0.94, 0.94, 0.94).spans == []
    assert Host().busy(1.0, 1.0, 0.5, 0.5, 1.0, 1.0).spans == []  # two seconds, twice


def test_one_quiet_second_between_busy_ones_does_not_split_a_span() -> None:
    # joined as Locust's busy intervals are; the quiet second counts in the mean
    assert Host().busy(1.0, 1.0, 0.5, 1.0, 1.0).spans == [HostSpan(T0, T0 + 5, 0.9, 2)]


def test_a_stretch_is_told_once_when_it_first_reaches_three_seconds() -> None:
    host = Host()
    told = [host.busy(share).newly_saturated() for share in (1.0, 1.0, 1.0, 1.0, 0.2, 0.2)]
    assert told == [None, None, HostSpan(T0, T0 + 3, 1.0, 2), None, None, None]
    assert host.load.newly_saturated() is None  # no new reading: nothing to look at
    told = [host.busy(share).newly_saturated() for share in (1.0, 1.0, 1.0)]
    assert told == [None, None, HostSpan(T0 + 6, T0 + 9, 1.0, 2)]  # the next stretch, once


def test_a_reading_that_does_not_move_forward_is_no_interval() -> None:
    load = HostLoad(2)
    load.add(T0, 0.0, 10.0)
    load.add(T0 + 1, 0.0, 10.0)  # no CPU time counted
    load.add(T0 + 1, 0.0, 12.0)  # no wall time passed
    for i in range(2, 6):
        load.add(T0 + i, 0.0, 10.0 + 2 * i)
    assert load.spans == [HostSpan(T0 + 1, T0 + 5, 1.0, 2)]
