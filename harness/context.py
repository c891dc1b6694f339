"""The run context: one object that carries a run's state, instead of six threaded parameters."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.deploy import owner
from harness.deploy.ports import PortAllocator
from harness.deploy.process import ManagedProcess
from harness.journal import Event, EventLog, Outcome
from harness.ledger import LedgerSummary
from harness.load import RemoteWorkers
from harness.observe.footprint import Footprint
from harness.report.charts import Chart
from harness.spec import Experiment
from harness.state import FaultState
from harness.store import RunFolder

if TYPE_CHECKING:
    from harness.deploy.base import Deployment, Layout, Service
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
    faults_skipped: bool = False  # a control run (``harness run --control``)
    layout: Layout | None = None
    deployment: Deployment | None = None
    promql: PromQL | None = None
    cleanup_errors: list[str] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)  # Prometheus, Toxiproxy
    load: list[ManagedProcess] = field(default_factory=list)  # Locust's processes
    teardown_from: float | None = None
    remote_load_workers: RemoteWorkers | None = None
    charts: list[Chart] = field(default_factory=list)  # the key series, saved for the report
    say: Callable[[str], None] = print  # the console's voice: what the run tells its user

    def __post_init__(self) -> None:
        self.footprint = Footprint(self.running_pids)

    @classmethod
    def open(
        cls, experiment: Experiment, runs_dir: Path, seed: int, say: Callable[[str], None] = print
    ) -> RunContext:
        """Make ``runs/<utc-time>-<name>/`` with its logs folder and event log."""
        now = time.time()
        folder = RunFolder.create(runs_dir, experiment.name, now)
        log = EventLog(folder.events)
        owner.record_run(folder.path)
        shutil.copyfile(experiment.file, folder.experiment)
        state = FaultState(folder.path)
        return cls(experiment, folder.path.name, folder.path, seed, log, state, now, say=say)

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.run_dir)

    def mark(self, moment: str, t: float) -> None:
        self.moments[moment] = t

    def note_fault(self, event: Event) -> None:
        """Fault moments: each label's start and end, and the span of all faults (also those
        a control run skipped)."""
        skipped = event.kind == "fault.skipped"
        if event.outcome is not Outcome.OK and not skipped:
            return
        label = str(event.value.get("label"))
        action = event.value.get("at") if skipped else event.kind.removeprefix("fault.")
        if action == "apply":
            self.moments.setdefault(f"{label}.start", event.t_complete)
            self.moments.setdefault("fault.start", event.t_complete)
        elif action == "heal":
            self.moments[f"{label}.end"] = event.t_complete
            self.moments["fault.end"] = max(self.moments.get("fault.end", 0.0), event.t_complete)

    def safely(self, what: str, action: Callable[[], Any]) -> None:
        """Run a teardown step; its failure is recorded apart from the verdict, never raised."""
        try:
            action()
        except Exception as exc:
            self.cleanup_errors.append(f"{what}: {exc}")

    def processes(self) -> dict[str, ManagedProcess]:
        """Every process of this host the run started: its services, the load, the target."""
        found: dict[str, ManagedProcess] = {}
        for service in self.services:
            found.update(service.processes)
        found.update((p.name, p) for p in self.load)
        found.update(self.deployment.processes if self.deployment else {})
        return found

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
        record = self.deployment.record() if self.deployment else {}
        for service in self.services:
            record.update(service.record())
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
