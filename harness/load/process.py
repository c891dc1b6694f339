"""The load generator's process: Locust started, watched and stopped from the harness.

Locust monkey-patches the interpreter with gevent on import, so it never runs inside the
harness process: this module only spawns ``python -m locust`` on ``locustfile.py`` and talks
to it through environment variables, its Prometheus port and the files it writes.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.deploy.process import ManagedProcess
from harness.errors import ComponentFailed

LOCUSTFILE = Path(__file__).with_name("locustfile.py")

_READY_TIMEOUT_S = 10.0
_MSGS_PER_USER = 20.0
_MAX_USERS = 200


@dataclass(frozen=True)
class LoadPlan:
    """What to send, how fast and for how long, and where the evidence of sending goes."""

    host: str
    path: str
    rate: float
    duration_s: float
    metrics_port: int
    ledger_path: Path
    log_path: Path
    users: int | None = None
    seed: int = 0
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration_s <= 0 or self.timeout_s <= 0:
            raise ValueError("rate, duration_s and timeout_s must be positive")
        if self.users is not None and self.users < 1:
            raise ValueError("users must be at least 1")

    @property
    def user_count(self) -> int:
        """Enough users that each paces about 20 msg/s: one user's sends are sequential."""
        if self.users is not None:
            return self.users
        return min(_MAX_USERS, max(1, math.ceil(self.rate / _MSGS_PER_USER)))


class LoadProcess:
    """One Locust run of a plan, in its own process group so signals to the harness miss it."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        plan.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        # Locust reads locust.conf and pyproject.toml from its working directory.
        self.process = ManagedProcess(
            "load", self.command(), plan.log_path, self.environment(), cwd=plan.log_path.parent
        )

    def start(self) -> None:
        """Spawn Locust and return once its metrics answer, so load is known to be flowing."""
        self.process.start()
        try:
            self.process.wait_ready(_READY_TIMEOUT_S, "/metrics", self.plan.metrics_port)
        except ComponentFailed:
            self.process.stop()
            raise

    def command(self) -> list[str]:
        """The Locust command line; everything that shapes the run is on it."""
        plan = self.plan
        users = str(plan.user_count)
        return [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--users",
            users,
            "--spawn-rate",
            users,
            # Locust only accepts whole seconds; rounding up never cuts the run short.
            "--run-time",
            f"{math.ceil(plan.duration_s)}s",
            "--host",
            plan.host,
            "--stop-timeout",
            "10",
            "--only-summary",
            "--loglevel",
            "WARNING",
            # Refused sends are the experiment's data, not a failure of the load step.
            "--exit-code-on-error",
            "0",
        ]

    def environment(self) -> dict[str, str]:
        """The caller's environment with the plan added and any LOCUST_* overrides removed."""
        plan = self.plan
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        env.update(
            HARNESS_LOAD_PATH=plan.path,
            HARNESS_LOAD_RATE=repr(plan.rate),
            HARNESS_LOAD_USERS=str(plan.user_count),
            HARNESS_LOAD_METRICS_PORT=str(plan.metrics_port),
            HARNESS_LOAD_LEDGER=str(plan.ledger_path.resolve()),
            HARNESS_LOAD_SEED=str(plan.seed),
            HARNESS_LOAD_TIMEOUT=repr(plan.timeout_s),
        )
        return env

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def running(self) -> bool:
        return self.process.running()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if Locust is still running after timeout (or never started)."""
        return self.process.wait(timeout)

    def stop(self, grace_s: float = 5.0) -> None:
        """Ask Locust to finish in-flight sends and flush its ledger, then kill it if it lingers."""
        self.process.stop(grace_s)
