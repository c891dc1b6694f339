"""Chaos experiments for asynchronous systems, as a library; the ``harness`` CLI is a thin client.

from harness import load_experiment, run
result = run(load_experiment(Path("experiments/slow-consumer.yaml")))
result.verdict  # Verdict.HELD, FAILED, INCONCLUSIVE or ABORTED
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.checks import CheckResult
from harness.errors import (
    Aborted,
    ComponentFailed,
    EnvironmentProblem,
    HarnessError,
    Interrupted,
    MissingComponent,
    PortTaken,
    SpecError,
)
from harness.journal import Event, Outcome
from harness.ledger import LedgerSummary
from harness.loader import load_experiment
from harness.spec import Experiment
from harness.verdict import Verdict

if TYPE_CHECKING:
    from harness.runner import RunResult, run


def __getattr__(name: str) -> Any:
    """``run`` and ``RunResult`` on first use: the runner pulls in every step of a run (the
    Docker SDK among them), which ``harness validate`` and the other light commands do not
    need."""
    if name in ("run", "RunResult"):
        from harness import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


__all__ = [
    "Aborted",
    "CheckResult",
    "ComponentFailed",
    "EnvironmentProblem",
    "Event",
    "Experiment",
    "HarnessError",
    "Interrupted",
    "LedgerSummary",
    "MissingComponent",
    "Outcome",
    "PortTaken",
    "RunResult",
    "SpecError",
    "Verdict",
    "load_experiment",
    "run",
]
