"""What each process of a run costs, and how busy the whole host was: CPU sampled each second.

A process that exits on its own (Locust at the end of the load) is reaped before anyone can
ask the kernel about it, so its CPU is read while it runs and the last reading is kept. A
replica that a fault killed and started again keeps the CPU of its earlier lives.

The same samples show when Locust saturates its core: then the latency it measures includes
its own queueing, and checks on that latency cannot be trusted. Beside them, the host's whole
CPU is read: while every core is busy (a neighbour on a shared machine, or the run itself), a
timing check measures the machine as much as the system under test.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from harness.observe.spans import merge

SATURATED = 0.9  # share of one core; Locust (gevent) runs on one
SAMPLE_S = 1.0
JOIN_S = SAMPLE_S * 1.5  # busy intervals at most a sample apart are one stretch
# The host's busy share, of all its cores together, from which it has nothing left to give:
# the last 5 % is rounding (CPU time is counted in 10 ms ticks) and the harness's own sampling.
HOST_SATURATED = 0.95
# A second or two of a full machine is a burst any run absorbs (a process starting); from three
# seconds, scrapes, timeouts and backlogs feel it.
MIN_HOST_SPAN_S = 3.0


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


def host_cpu() -> tuple[float, float]:
    """The host's CPU seconds since boot over all cores: (idle, total). Waiting for I/O is idle;
    steal is busy (a core the hypervisor took is the machine's, not the system's); guest time is
    left out of the total, since Linux counts it in user time as well."""
    times = psutil.cpu_times()
    guest = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return times.idle + getattr(times, "iowait", 0.0), sum(times) - guest


@dataclass(frozen=True)
class HostSpan:
    """A stretch when the host's CPU was saturated; ``busy``: its mean busy share."""

    start: float
    end: float
    busy: float
    cores: int

    @property
    def cores_busy(self) -> str:
        return f"all {self.cores} cores busy" if self.cores > 1 else "its one core busy"


def describe_saturation(spans: Sequence[HostSpan], t0: float) -> str:
    """``the host's CPU was saturated from +40s to +52s (all 2 cores busy)``, seconds from
    ``t0``."""
    when = " and ".join(f"from +{s.start - t0:.0f}s to +{s.end - t0:.0f}s" for s in spans)
    return f"the host's CPU was saturated {when} ({spans[0].cores_busy})"


@dataclass
class HostLoad:
    """The busy share of the host's whole CPU between readings, and the stretches of at least
    ``MIN_HOST_SPAN_S`` when it was saturated."""

    cores: int = field(default_factory=lambda: psutil.cpu_count() or 1)
    _intervals: list[tuple[float, float, float]] = field(default_factory=list)  # from, to, busy
    _before: tuple[float, float, float] | None = None  # (wall, idle, total)
    _seen: int = 0  # intervals when newly_saturated last looked
    _told: float | None = None  # start of the span newly_saturated last returned

    def add(self, now: float, idle_s: float, total_s: float) -> None:
        """One reading of ``host_cpu``; with the one before, an interval."""
        before, self._before = self._before, (now, idle_s, total_s)
        if before is None or now <= before[0] or total_s <= before[2]:
            return
        busy = 1 - (idle_s - before[1]) / (total_s - before[2])
        self._intervals.append((before[0], now, min(1.0, max(0.0, busy))))

    @property
    def spans(self) -> list[HostSpan]:
        """Saturated intervals joined as ``Footprint.saturated`` joins Locust's, the short left
        out; each span's busy share is the mean over all its intervals, weighted by length."""
        saturated = [(a, b) for a, b, busy in self._intervals if busy >= HOST_SATURATED]
        spans = []
        for start, end in merge(saturated, JOIN_S):
            if end - start < MIN_HOST_SPAN_S:
                continue
            inside = [(b - a, busy) for a, b, busy in self._intervals if start <= a and b <= end]
            mean = sum(s * busy for s, busy in inside) / sum(s for s, _ in inside)
            spans.append(HostSpan(start, end, round(mean, 2), self.cores))
        return spans

    def newly_saturated(self) -> HostSpan | None:
        """The span under way, the first time it is long enough to be one (to say so live)."""
        if len(self._intervals) == self._seen:
            return None
        self._seen = len(self._intervals)
        spans = self.spans
        if not spans or spans[-1].start == self._told:
            return None
        self._told = spans[-1].start
        return spans[-1]


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
    host: HostLoad = field(default_factory=HostLoad)

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
        self.host.add(now, *host_cpu())

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
        return merge(self._busy, JOIN_S)

    def cpu_s(self, name: str) -> float | None:
        entry = self.tracked.get(name)
        return None if entry is None else round(entry.earlier_s + entry.cpu_s, 3)


def own_cpu_s() -> float:
    """CPU the harness process itself has used, without the processes it started."""
    times = os.times()
    return times.user + times.system
