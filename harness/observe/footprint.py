"""What each process of a run costs: CPU seconds, sampled about once a second while it runs.

A process that exits on its own (Locust at the end of the load) is reaped before anyone can
ask the kernel about it, so its CPU is read while it runs and the last reading is kept. A
replica that a fault killed and started again keeps the CPU of its earlier lives.

The same samples show when Locust saturates its core: then the latency it measures includes
its own queueing, and checks on that latency cannot be trusted.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psutil

from harness.observe.spans import merge

SATURATED = 0.9  # share of one core; Locust (gevent) runs on one
SAMPLE_S = 1.0


def tree_cpu_s(process: psutil.Process) -> float:
    """User and system CPU of a process and its living children."""
    total = 0.0
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        children = process.children(recursive=True)
    for member in [process, *children]:
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system
    return total


@dataclass
class _Tracked:
    pid: int
    process: psutil.Process
    cpu_s: float = 0.0  # latest reading of the current life
    earlier_s: float = 0.0  # CPU of the lives before it


@dataclass
class Footprint:
    """Samples the CPU of the processes ``pids`` names (name → pid, or None when not running)."""

    pids: Callable[[], Mapping[str, int | None]]
    watched: str = "load"  # whose saturation to report: this process and its workers
    tracked: dict[str, _Tracked] = field(default_factory=dict)
    _busy: list[tuple[float, float]] = field(default_factory=list)  # each saturated interval
    _last: float = 0.0
    _before: dict[str, tuple[float, float]] = field(default_factory=dict)  # (wall, cpu)

    def sample(self, now: float | None = None, force: bool = False) -> None:
        """Read every process's CPU, at most once per ``SAMPLE_S`` unless forced."""
        now = time.time() if now is None else now
        if now - self._last < SAMPLE_S and not force:
            return
        self._last = now
        for name, pid in self.pids().items():
            if pid is None:
                continue
            entry = self.tracked.get(name)
            if entry is None or entry.pid != pid:
                try:
                    process = psutil.Process(pid)
                except psutil.Error:
                    continue
                earlier = entry.earlier_s + entry.cpu_s if entry else 0.0
                entry = self.tracked[name] = _Tracked(pid, process, earlier_s=earlier)
            with contextlib.suppress(psutil.Error):
                entry.cpu_s = tree_cpu_s(entry.process)
        self._note_saturation(now)

    def _note_saturation(self, now: float) -> None:
        for name, entry in self.tracked.items():
            if name != self.watched and not name.startswith(f"{self.watched}-worker-"):
                continue
            before = self._before.pop(name, None)
            if not entry.process.is_running():
                continue
            self._before[name] = (now, entry.cpu_s)
            if before is None or now <= before[0] or entry.cpu_s < before[1]:
                continue  # the first reading, or a new life
            if (entry.cpu_s - before[1]) / (now - before[0]) > SATURATED:
                self._busy.append((before[0], now))

    @property
    def saturated(self) -> list[tuple[float, float]]:
        """The stretches when Locust or a worker was saturated, touching intervals joined."""
        return merge(self._busy, SAMPLE_S * 1.5)

    def cpu_s(self, name: str) -> float | None:
        entry = self.tracked.get(name)
        return None if entry is None else round(entry.earlier_s + entry.cpu_s, 3)


def own_cpu_s() -> float:
    """CPU the harness process itself has used, without the processes it started."""
    times = os.times()
    return times.user + times.system
