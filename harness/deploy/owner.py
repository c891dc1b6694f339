"""Who started what: the owner mark a harness gives every process, container and network it
starts, and the record of them it keeps under ``<HARNESS_HOME>/live/``.

Both exist for ``harness.deploy.leftovers``: teardown cannot run in a process killed with
SIGKILL, so what it started must say by itself whose it is. The mark is the harness's pid and
start time, in ``HARNESS_OWNER`` (which a process's own children inherit); the record names
each process with its start time, because some programs (Redis, when it sets its process
title) overwrite their environment, and the run folders, whose state files list the faults in
effect.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path

import psutil

from harness.components import home

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


def live_dir() -> Path:
    return home() / "live"


def owner_file(owner: str) -> Path:
    return live_dir() / f"{owner.replace(':', '_')}.jsonl"


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
    path = owner_file(owner_mark())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def runs(owner: str) -> bool:
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
