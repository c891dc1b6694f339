"""``harness up``: an experiment's target, its links and a Prometheus, left standing for the
dashboards and for exploring by hand, until ``harness down``.

The standing deployment is a harness process of its own, in a session of its own, so it
outlives the command that started it; a record in ``<HARNESS_HOME>/standing/`` names it, and
``harness down`` sends it SIGTERM, upon which it tears everything down like the end of a run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from harness.components import home
from harness.errors import EnvironmentProblem
from harness.load import Publish
from harness.spec import Experiment

if TYPE_CHECKING:
    from harness.stack import Standing

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
_LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class Stand:
    """What ``harness up`` left standing, as its record says."""

    pid: int
    started: float  # the process's create time: a reused pid is not this stand
    target: str
    run_dir: str
    urls: dict[str, str]


def _records() -> Path:
    return home() / "standing"


def record(standing: Standing, experiment: Experiment, run_dir: Path) -> Stand:
    """Called in the standing process once everything answers; the parent waits for this."""
    topology = experiment.topology
    load = topology.load
    port, host = standing.where.ports[load.component][0], standing.where.hosts[load.component][0]
    publish = Publish.of(load, topology.queue)
    # Where the load would send: a producer's URL, or the broker and what it writes there.
    address = publish.describe(port, host) if publish else f"http://{host}:{port}{load.path}"
    stand = Stand(
        pid=os.getpid(),
        started=round(psutil.Process().create_time(), 2),
        target=topology.name,
        run_dir=str(run_dir),
        urls={
            "prometheus": standing.prometheus.url,
            "toxiproxy": standing.network.url,
            load.component: address,
        },
    )
    _records().mkdir(parents=True, exist_ok=True)
    path = _records() / f"{stand.pid}.json"
    path.with_suffix(".tmp").write_text(json.dumps(asdict(stand)))
    path.with_suffix(".tmp").replace(path)  # whole or absent, never half-written
    return stand


def start_detached(argv: Sequence[str], log: Path) -> Stand:
    """Start ``harness up --foreground`` in a session of its own and wait until it stands."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "harness", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    path = _records() / f"{child.pid}.json"
    while time.monotonic() < deadline:
        if path.is_file():
            return _read(path)
        if child.poll() is not None:
            tail = "\n".join(log.read_text().rstrip().splitlines()[-_LOG_TAIL_LINES:])
            raise EnvironmentProblem(f"harness up failed (exit {child.returncode}):\n{tail}")
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    raise EnvironmentProblem(f"nothing stood within {READY_TIMEOUT_S:.0f}s; see {log}")


def stop_all() -> list[Stand]:
    """SIGTERM every standing deployment and wait for each to tear down; what was stopped."""
    records = sorted(_records().glob("*.json")) if _records().is_dir() else []
    return [stand for stand in map(_read, records) if stop(stand)]


def stop(stand: Stand) -> bool:
    """SIGTERM one stand and wait for its teardown; False when it was no longer running."""
    process = _alive(stand)
    if process is not None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except psutil.TimeoutExpired:
            process.kill()  # what it left is then a leftover, which down removes next
    (_records() / f"{stand.pid}.json").unlink(missing_ok=True)
    return process is not None


def _read(path: Path) -> Stand:
    return Stand(**json.loads(path.read_text()))


def _alive(stand: Stand) -> psutil.Process | None:
    try:
        process = psutil.Process(stand.pid)
        if round(process.create_time(), 2) == stand.started:
            return process
    except psutil.Error:
        pass
    return None
