"""The run context: one object that carries a run's state, instead of six threaded parameters."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.deploy import leftovers
from harness.deploy.docker import DockerDeployment, ServiceContainer
from harness.deploy.ports import PortAllocator
from harness.deploy.process import ManagedProcess
from harness.journal import Event, EventLog, Outcome
from harness.ledger import LedgerSummary
from harness.load import RemoteWorkers
from harness.observe.footprint import Footprint
from harness.report.charts import Chart
from harness.report.html import EXPERIMENT_COPY
from harness.spec import Experiment
from harness.state import FaultState

if TYPE_CHECKING:
    from harness.deploy.local import Layout, LocalDeployment
    from harness.observe.promql import PromQL


@dataclass
class RunContext:
    experiment: Experiment
    run_id: str
    run_dir: Path
    seed: int
    log: EventLog
    state: FaultState
    started_at: float
    ports: PortAllocator = field(default_factory=PortAllocator)
    moments: dict[str, float] = field(default_factory=dict)
    ledger: LedgerSummary | None = None
    ledger_problem: str | None = None  # the ledger source could not be read: why
    drained: bool = False
    load_failure: str | None = None  # the load generator died: no verdict can be trusted as held
    layout: Layout | None = None
    deployment: LocalDeployment | DockerDeployment | None = None
    promql: PromQL | None = None
    cleanup_errors: list[str] = field(default_factory=list)
    infrastructure: dict[str, ManagedProcess] = field(default_factory=dict)  # prometheus, …
    containers: dict[str, ServiceContainer] = field(default_factory=dict)  # …or as containers
    teardown_from: float | None = None
    remote_load_workers: RemoteWorkers | None = None
    charts: list[Chart] = field(default_factory=list)  # the key series, saved for the report

    def __post_init__(self) -> None:
        self.footprint = Footprint(self.running_pids)

    @classmethod
    def open(cls, experiment: Experiment, runs_dir: Path, seed: int) -> RunContext:
        """Make ``runs/<utc-time>-<name>/`` with its logs folder and event log."""
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S")
        base = f"{stamp}-{re.sub(r'[^A-Za-z0-9_-]', '-', experiment.name)}"
        run_dir = runs_dir / base
        suffix = 1
        while run_dir.exists():
            suffix += 1
            run_dir = runs_dir / f"{base}-{suffix}"
        (run_dir / "logs").mkdir(parents=True)
        run_dir = run_dir.resolve()
        log = EventLog(run_dir / "events.jsonl")
        leftovers.record_run(run_dir)
        shutil.copyfile(experiment.file, run_dir / EXPERIMENT_COPY)
        return cls(experiment, run_dir.name, run_dir, seed, log, FaultState(run_dir), now)

    def mark(self, moment: str, t: float) -> None:
        self.moments[moment] = t

    def note_fault(self, event: Event) -> None:
        """Fault moments: each label's start and end, and the span of all faults."""
        if event.outcome is not Outcome.OK:
            return
        label = str(event.value.get("label"))
        if event.kind == "fault.apply":
            self.moments.setdefault(f"{label}.start", event.t_complete)
            self.moments.setdefault("fault.start", event.t_complete)
        elif event.kind == "fault.heal":
            self.moments[f"{label}.end"] = event.t_complete
            self.moments["fault.end"] = max(self.moments.get("fault.end", 0.0), event.t_complete)

    def safely(self, what: str, action: Callable[[], Any]) -> None:
        """Run a teardown step; its failure is recorded apart from the verdict, never raised."""
        try:
            action()
        except Exception as exc:
            self.cleanup_errors.append(f"{what}: {exc}")

    def processes(self) -> dict[str, ManagedProcess]:
        deployed = self.deployment.processes if self.deployment else {}
        return {**self.infrastructure, **deployed}

    def running_pids(self) -> dict[str, int | None]:
        return {name: p.running_pid() for name, p in self.processes().items()}

    def torn_down(self) -> None:
        """The last step of teardown: every process has been reaped."""
        self.state.torn_down("teardown")
        self.log.now("teardown", "run", Outcome.OK, self.teardown_from)

    def component_record(self) -> dict[str, dict[str, Any]]:
        """Each process or container: where it listened, its log, when it started, how soon it
        was ready and the CPU it used, so that a slow run explains itself."""
        instances = {i.name: i for i in self.deployment.instances} if self.deployment else {}
        record = self.deployment.record() if isinstance(self.deployment, DockerDeployment) else {}
        record.update((name, each.record()) for name, each in self.containers.items())
        for name, process in self.processes().items():
            instance = instances.get(name)
            record[name] = {
                "component": instance.component if instance else name,
                "port": instance.port if instance else None,
                "pid": process.pid,
                "log": str(process.log_path),
                "started_at": process.started_at,
                "ready_s": process.ready_s,
                "cpu_s": self.footprint.cpu_s(name),
            }
        return record
