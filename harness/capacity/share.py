"""A load's rate given as a share of the target's measured capacity: ``rate: 40% capacity``.

The loader turns the share into messages per second from the stored measurement of the same
system on this machine (``store.recent``). Without one, ``harness run`` measures it first and
``harness validate`` checks the rest of the file against a stand-in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.capacity.store import Measurement
from harness.errors import HarnessError

# Far above a useful load: ten times what the target sustains.
MOST_PERCENT = 1000.0
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*(?:of\s+)?capacity\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Subject:
    """A system to measure: a target file, an experiment's ``overrides:`` of its components,
    and ``--set`` overrides (components, deployer, observers)."""

    target: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class CapacityShare:
    """The share an experiment asked for and the measurement it was read from (None: a
    stand-in, for validation only)."""

    percent: float
    measured: Measurement | None

    def to_json(self) -> dict[str, Any]:
        measured = self.measured
        return {
            "percent": self.percent,
            "capacity_per_s": measured.rate_per_s if measured else None,
            "measured_at": measured.measured_at if measured else None,
            "key": measured.key if measured else None,
        }


class CapacityUnmeasured(HarnessError):
    """No recent measurement of this system on this machine: measure it, then load again."""

    exit_code = 2

    def __init__(self, where: str, subject: Subject, name: str) -> None:
        super().__init__(
            f"{where}: load.rate is a share of the capacity of {name}, not measured on this "
            f"machine yet: run `harness capacity {name}` (or `harness run`, which measures it)"
        )
        self.subject = subject
        self.name = name


def percent_of(value: Any) -> float | None:
    """The percent in ``40% capacity`` (or ``40% of capacity``); None for any other rate."""
    if not isinstance(value, str):
        return None
    match = _SHARE.match(value)
    if not match:
        return None
    percent = float(match.group(1))
    if not 0 < percent <= MOST_PERCENT:
        raise ValueError(f"a share of capacity is above 0% and at most {MOST_PERCENT:g}%, "
                         f"got {value!r}")  # fmt: skip
    return percent
