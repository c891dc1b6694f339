"""Processes a harness left behind when it was killed outright (SIGKILL, a lost CI runner).

Teardown cannot run in a process that was killed with SIGKILL. Two records name what a harness
started, so the next ``harness run`` or ``harness down`` can remove it:

- every process it starts carries ``HARNESS_OWNER`` (the harness's pid and start time) in its
  environment, which the process's own children inherit;
- each start is also appended to ``<HARNESS_HOME>/live/<owner>.jsonl``, because some programs
  (Redis, when it sets its process title) overwrite their environment.

The owner's record also names its run folders, whose state file lists the faults that were
in effect when the harness died. A process whose owner no longer runs is a leftover.
Components, Locust, Prometheus and Toxiproxy (with its proxies and toxics) all go with their
process groups, which is what undoes those faults: a paused process is continued and killed,
a toxic or disabled proxy goes with its Toxiproxy. On an existing Toxiproxy (one the run did
not start) the record names each proxy the run made there, and those are deleted. Containers
and networks of the docker deployer carry their harness's owner mark as a label: those of a
harness that no longer runs are removed. Processes of
a harness that still runs are never touched, so concurrent runs are safe.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from harness.components import home
from harness.state import FaultState, InEffect, in_effect

OWNER_VAR = "HARNESS_OWNER"


def owner_mark(pid: int | None = None) -> str:
    """``boot-id:pid-namespace:pid:start-time`` of a harness process of this namespace: a reused
    pid does not look like the owner, and a pid of another host or PID namespace (a harness in
    a container, a second host on one Docker engine) is never read as one of ours."""
    process = psutil.Process(pid)
    return f"{_namespace()}:{process.pid}:{process.create_time():.2f}"


@functools.cache
def _namespace() -> str:
    """This machine's boot id and this process's PID namespace: where its pids mean something."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        space = os.readlink("/proc/self/ns/pid").removeprefix("pid:[").rstrip("]")
    except OSError:  # no /proc to tell by: one namespace for all
        return "-:-"
    return f"{boot}:{space}"


def owned(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with this harness named as the owner of the process that gets it."""
    return {**env, OWNER_VAR: owner_mark()}


@dataclass(frozen=True)
class Leftover:
    pid: int
    pgid: int
    command: str


@dataclass(frozen=True)
class Remains:
    """What killed harnesses left: their processes, and the faults their runs had in effect."""

    processes: list[Leftover]
    faults: dict[Path, list[InEffect]]
    proxies: list[str]  # the API URL of each proxy made on an existing Toxiproxy
    containers: list[str]  # "container NAME" or "network NAME", with the docker deployer

    def __bool__(self) -> bool:
        return bool(self.processes or self.faults or self.proxies or self.containers)


def _live_dir() -> Path:
    return home() / "live"


def _owner_file(owner: str) -> Path:
    return _live_dir() / f"{owner.replace(':', '_')}.jsonl"


def record(pid: int, name: str) -> None:
    """Note a process the harness just started, with its start time (pids are reused)."""
    with contextlib.suppress(psutil.Error, OSError):
        _append({"pid": pid, "start": round(psutil.Process(pid).create_time(), 2), "name": name})


def record_run(run_dir: Path) -> None:
    """Note a run folder, so the faults in its state file can be accounted for."""
    _append({"run_dir": str(run_dir)})


def record_proxy(url: str) -> None:
    """Note a proxy made on a Toxiproxy server the run does not own, by its API URL."""
    _append({"proxy": url})


def _append(line: dict[str, object]) -> None:
    path = _owner_file(owner_mark())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def _records(path: Path) -> list[dict[str, object]]:
    entries = []
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
    return entries


def _owner_runs(owner: str) -> bool:
    """Whether the harness ``owner`` names still runs; one of another host or PID namespace,
    or of a mark this harness cannot read, counts as running: its leftovers are not ours."""
    parts = owner.split(":")
    if len(parts) == 4:
        boot, space, pid, started = parts
        if f"{boot}:{space}" != _namespace():
            return True
    elif len(parts) == 2:  # a mark from before namespaces were part of it
        pid, started = parts
    else:
        return True
    try:
        return pid.isdigit() and f"{psutil.Process(int(pid)).create_time():.2f}" == started
    except psutil.Error:
        return False


def _dead_owner_files() -> list[Path]:
    folder = _live_dir()
    if not folder.is_dir():
        return []
    return [p for p in folder.glob("*.jsonl") if not _owner_runs(p.stem.replace("_", ":"))]


def _recorded_pids(entries: list[dict[str, object]]) -> set[int]:
    """The recorded processes still running: same pid and same start time."""
    pids = set()
    for entry in entries:
        pid = entry.get("pid")
        if not isinstance(pid, int):
            continue  # a run folder, not a process
        with contextlib.suppress(psutil.Error):
            if round(psutil.Process(pid).create_time(), 2) == entry.get("start"):
                pids.add(pid)
    return pids


def _faults_in_effect(entries: list[dict[str, object]]) -> dict[Path, list[InEffect]]:
    runs = (Path(str(e["run_dir"])) for e in entries if "run_dir" in e)
    return {run_dir: faults for run_dir in runs if (faults := in_effect(run_dir))}


def _marked_pids() -> set[int]:
    """Running processes whose environment names an owner that no longer runs."""
    pids, alive = set(), {}
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            owner = process.environ().get(OWNER_VAR)
            if owner is None:
                continue
            if owner not in alive:
                alive[owner] = _owner_runs(owner)
            if not alive[owner]:
                pids.add(process.pid)
    return pids


def find() -> Remains:
    records = [_records(path) for path in _dead_owner_files()]
    pids = _marked_pids().union(*(_recorded_pids(entries) for entries in records))
    faults = {run: f for entries in records for run, f in _faults_in_effect(entries).items()}
    proxies = [str(e["proxy"]) for entries in records for e in entries if "proxy" in e]
    found = []
    for pid in sorted(pids):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            command = " ".join(process.cmdline()) or process.name()
            found.append(Leftover(pid, os.getpgid(pid), command))
    from harness.deploy import docker  # here: it imports this module

    return Remains(found, faults, proxies, docker.orphans(_owner_runs))


def remove(remains: Remains) -> None:
    """SIGKILL each leftover's process group, after SIGCONT: a paused process may be among them.

    Then write in each run's state file that its faults were undone, and forget the records of
    harnesses that no longer run.
    """
    leftovers = remains.processes
    ours = os.getpgid(0)
    for pgid in sorted({left.pgid for left in leftovers} - {ours}):
        for signum in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signum)
    for left in leftovers:  # reap what is ours to reap; wait for the rest to go
        with contextlib.suppress(psutil.Error):
            psutil.Process(left.pid).wait(timeout=5)
    if remains.containers:
        from harness.deploy import docker  # here: it imports this module

        docker.remove_orphans(remains.containers)
    for proxy in remains.proxies:  # with its toxics; already gone is as good
        with contextlib.suppress(httpx.HTTPError):
            httpx.delete(proxy, timeout=5.0, trust_env=False)
    for run_dir in remains.faults:
        with contextlib.suppress(OSError):
            FaultState(run_dir).torn_down("harness down")
    for path in _dead_owner_files():
        path.unlink(missing_ok=True)
