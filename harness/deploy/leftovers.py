"""Processes a harness left behind when it was killed outright (SIGKILL, a lost CI runner).

Teardown cannot run in a process that was killed with SIGKILL. Every process the harness starts
carries ``HARNESS_OWNER`` (the harness's pid and start time) in its environment; a process whose
owner no longer runs is a leftover. Components, Locust, Prometheus and Toxiproxy (with its
proxies and toxics) all go with their process groups. Processes of a harness that still runs
are never touched, so concurrent runs are safe.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass

import psutil

from harness.deploy.process import OWNER_VAR, owner_mark


@dataclass(frozen=True)
class Leftover:
    pid: int
    pgid: int
    owner: str
    command: str


def find() -> list[Leftover]:
    found = []
    alive: dict[str, bool] = {}
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            owner = process.environ().get(OWNER_VAR)
            pgid = os.getpgid(process.pid)
        except (psutil.Error, ProcessLookupError):
            continue
        if owner is None:
            continue
        if owner not in alive:
            alive[owner] = _owner_runs(owner)
        if not alive[owner]:
            command = " ".join(process.info["cmdline"] or [process.name()])
            found.append(Leftover(process.pid, pgid, owner, command))
    return found


def _owner_runs(owner: str) -> bool:
    pid = int(owner.split(":")[0]) if owner.split(":")[0].isdigit() else -1
    try:
        return owner_mark(pid) == owner
    except (psutil.Error, ValueError):
        return False


def remove(leftovers: list[Leftover]) -> None:
    """SIGKILL each leftover's process group, after SIGCONT: a paused process may be among them."""
    ours = os.getpgid(0)
    for pgid in sorted({left.pgid for left in leftovers} - {ours}):
        for signum in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signum)
    for left in leftovers:  # reap what is ours to reap; wait for the rest to go
        with contextlib.suppress(psutil.Error):
            psutil.Process(left.pid).wait(timeout=5)
