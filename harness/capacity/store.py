"""Measured capacities kept on this machine, so that ``rate: 40% capacity`` means the same share
of the same system on a laptop with 16 cores and on a 2-core CI runner.

A measurement belongs to one system on one machine: its key is the target's model as the run
would deploy it (after every override, with its deployer) and the machine (host name and
cores). It is kept in ``$HARNESS_HOME/capacity/<key>.json`` (or in ``$HARNESS_CAPACITY_DIR``)
and read back while it is recent (``MAX_AGE_S``); a changed target, another machine or an old
measurement is measured again.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import components
from harness.topology import TopologySpec

# A machine's load and a target's code change; a week-old figure is measured again.
MAX_AGE_S = 7 * 24 * 3600.0
VERSION = 1


@dataclass(frozen=True)
class Measurement:
    """What ``harness capacity`` found: each sweep's highest sustained rate and each catch-up
    run's rate of draining a backlog, with the medians that stand for them."""

    target: str
    key: str
    host: str
    cores: int
    measured_at: str  # ISO 8601, UTC
    rate_per_s: float  # the median of rates_per_s
    rates_per_s: tuple[float, ...]
    catch_up_per_s: float | None  # the median of catch_ups_per_s; None when not measurable
    catch_ups_per_s: tuple[float, ...]
    backlog: int  # the messages each catch-up run left for the consumers to drain
    step_s: float  # how long each rate was sent
    overrides: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()  # the run folders of every step and catch-up
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        return cls(
            str(data["target"]), str(data["key"]), str(data["host"]), int(data["cores"]),
            str(data["measured_at"]), float(data["rate_per_s"]),
            tuple(float(r) for r in data["rates_per_s"]),
            None if data["catch_up_per_s"] is None else float(data["catch_up_per_s"]),
            tuple(float(r) for r in data["catch_ups_per_s"]), int(data["backlog"]),
            float(data["step_s"]), tuple(map(str, data.get("overrides") or ())),
            tuple(map(str, data.get("runs") or ())), int(data.get("version", VERSION)),
        )  # fmt: skip

    def age_s(self, now: datetime.datetime | None = None) -> float:
        measured = datetime.datetime.fromisoformat(self.measured_at)
        return ((now or datetime.datetime.now(datetime.UTC)) - measured).total_seconds()


def key(topology: TopologySpec) -> str:
    """The system and the machine a measurement belongs to, as a short digest."""
    described = {
        "topology": topology.model_dump(mode="json"),
        "host": host(),
        "cores": cores(),
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    return f"{topology.name}-{digest[:16]}"


def host() -> str:
    return socket.gethostname()


def cores() -> int:
    return os.cpu_count() or 1


def folder() -> Path:
    """``$HARNESS_CAPACITY_DIR``, else ``capacity`` in the harness's home."""
    given = os.environ.get("HARNESS_CAPACITY_DIR")
    return Path(given).expanduser() if given else components.home() / "capacity"


def _file(measured: str) -> Path:
    """Where the measurement of key ``measured`` is kept."""
    return folder() / f"{measured}.json"


def recent(topology: TopologySpec) -> Measurement | None:
    """The measurement of this system on this machine, unless there is none or it is old."""
    path = _file(key(topology))
    try:
        found = Measurement.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # none yet, or unreadable: measured again, which rewrites it
    if found.version != VERSION or found.age_s() > MAX_AGE_S:
        return None
    return found


def keep(measurement: Measurement) -> Path:
    """Store a measurement where ``recent`` finds it, written whole, then renamed; the runs
    the one it replaces kept beside it (``harness run``'s quick measurements) go."""
    path = _file(measurement.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    _forget_runs(path)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(measurement.to_json(), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def _forget_runs(path: Path) -> None:
    try:
        runs = json.loads(path.read_text(encoding="utf-8")).get("runs") or ()
    except (OSError, ValueError, AttributeError):
        return
    ours = folder() / "runs"
    for run in map(Path, runs):
        if run.parent == ours:
            shutil.rmtree(run, ignore_errors=True)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
