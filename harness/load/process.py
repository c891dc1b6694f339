"""The load generator's process: Locust started, watched and stopped from the harness.

Locust monkey-patches the interpreter with gevent on import, so it never runs inside the
harness process: this module only spawns ``python -m locust`` on ``locustfile.py`` and talks
to it through environment variables, its Prometheus port and the files it writes.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ComponentFailed

LOCUSTFILE = Path(__file__).with_name("locustfile.py")

_READY_TIMEOUT_S = 10.0
_LOG_TAIL_LINES = 40
_MSGS_PER_USER = 20.0
_MAX_USERS = 200
# An http_proxy in the caller's environment must not intercept a loopback probe.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
    """One Locust run of a plan, in its own session so signals to the harness do not reach it."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn Locust and return once its metrics answer, so load is known to be flowing."""
        plan = self.plan
        plan.log_path.parent.mkdir(parents=True, exist_ok=True)
        plan.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        with plan.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                # Locust reads locust.conf and pyproject.toml from its working directory.
                cwd=plan.log_path.parent,
                start_new_session=True,
            )
        self._await_ready()

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
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if Locust is still running after timeout (or never started)."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float = 5.0) -> None:
        """Ask Locust to finish in-flight sends and flush its ledger, then kill it if it lingers."""
        proc = self._proc
        # Until the leader is reaped its pid cannot be reused, so signalling its group is safe.
        if proc is None or proc.returncode is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            proc.wait()

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):  # the whole group already exited
            os.killpg(self._proc.pid, signum)

    def _await_ready(self) -> None:
        assert self._proc is not None
        spawned = time.monotonic()
        while True:
            code = self._proc.poll()
            if code is not None:
                raise ComponentFailed("load", f"exited with code {code} at start", self._log_tail())
            if self._metrics_answer():
                return
            if time.monotonic() - spawned > _READY_TIMEOUT_S:
                self.stop()
                raise ComponentFailed(
                    "load",
                    f"metrics port {self.plan.metrics_port} did not answer "
                    f"within {_READY_TIMEOUT_S:g} s",
                    self._log_tail(),
                )
            time.sleep(0.05)

    def _metrics_answer(self) -> bool:
        """Whether our Locust serves the port; another program holding it would not say this."""
        url = f"http://127.0.0.1:{self.plan.metrics_port}/metrics"
        try:
            with _NO_PROXY.open(url, timeout=1.0) as response:
                return b"harness_load_target_rate" in response.read()
        except (OSError, http.client.HTTPException):
            return False

    def _log_tail(self) -> str:
        try:
            lines = self.plan.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-_LOG_TAIL_LINES:])
