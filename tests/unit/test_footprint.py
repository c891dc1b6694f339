"""The CPU footprint of a run's processes, and Locust's saturation, from scripted CPU readings.

The readings are scripted so that the arithmetic is tested without depending on how busy the
machine is; one test reads a real process's CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.observe import footprint
from harness.observe.footprint import Footprint, tree_cpu_s

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
