"""Chaos experiments for asynchronous systems, as a library; the ``harness`` CLI is a thin client.

from harness import load_experiment, run
result = run(load_experiment(Path("experiments/slow-consumer.yaml")))
result.verdict  # Verdict.HELD, FAILED, INCONCLUSIVE or ABORTED
"""

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
from harness.runner import RunResult, run
from harness.spec import Experiment
from harness.verdict import Verdict

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
