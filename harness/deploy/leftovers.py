"""What a harness left behind when it was killed outright (SIGKILL, a lost CI runner), found
and removed by the next ``harness run`` or ``harness down``.

A process, container or network whose owner (``harness.deploy.owner``) no longer runs is a
leftover. Components, Locust, Prometheus and Toxiproxy (with its proxies and toxics) all go
with their process groups, which is what undoes those faults: a paused process is continued
and killed, a toxic or disabled proxy goes with its Toxiproxy. On an existing Toxiproxy (one
the run did not start) the record names each proxy the run made there, and those are deleted.
Containers and networks of the docker deployer carry their harness's owner mark as a label:
those of a harness that no longer runs are removed. What a harness that still runs started is
never touched, so concurrent runs are safe. The faults a dead harness's runs had in effect are
marked undone in their state files.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import httpx
import psutil

from harness.deploy import owner
from harness.deploy.containers import LABEL_OWNER
from harness.state import FaultState, InEffect, in_effect


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


def _records(path: Path) -> list[dict[str, object]]:
    entries = []
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
    return entries


def _dead_owner_files() -> list[Path]:
    folder = owner.live_dir()
    if not folder.is_dir():
        return []
    return [p for p in folder.glob("*.jsonl") if not owner.runs(p.stem.replace("_", ":"))]


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
            mark = process.environ().get(owner.OWNER_VAR)
            if mark is None:
                continue
            if mark not in alive:
                alive[mark] = owner.runs(mark)
            if not alive[mark]:
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
    return Remains(found, faults, proxies, orphans(owner.runs))


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
        remove_orphans(remains.containers)
    for proxy in remains.proxies:  # with its toxics; already gone is as good
        with contextlib.suppress(httpx.HTTPError):
            httpx.delete(proxy, timeout=5.0, trust_env=False)
    for run_dir in remains.faults:
        with contextlib.suppress(OSError):
            FaultState(run_dir).torn_down("harness down")
    for path in _dead_owner_files():
        path.unlink(missing_ok=True)


def orphans(alive: Callable[[str], bool]) -> list[str]:
    """``container NAME`` and ``network NAME`` for each left by a harness that no longer runs
    (``alive`` says of an owner mark), when an engine answers here."""
    try:
        client = docker.from_env(timeout=10)
        client.ping()
        containers = client.containers.list(all=True, filters={"label": LABEL_OWNER})
        networks = client.networks.list(filters={"label": LABEL_OWNER})
    except docker.errors.DockerException:
        return []
    return [f"container {c.name}" for c in containers if not alive(c.labels[LABEL_OWNER])] + [
        f"network {n.name}" for n in networks if not alive(n.attrs["Labels"][LABEL_OWNER])
    ]


def remove_orphans(names: Iterable[str]) -> None:
    """Remove what ``orphans`` named: containers first, as a network in use cannot go."""
    with contextlib.suppress(docker.errors.DockerException):
        client = docker.from_env(timeout=30)
        for kind, name in sorted((n.split(" ", 1) for n in names), key=lambda k: k[0]):
            with contextlib.suppress(docker.errors.NotFound):
                if kind == "container":
                    client.containers.get(name).remove(force=True)
                else:
                    client.networks.get(name).remove()
