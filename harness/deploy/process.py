"""A component process: started in its own process group, logged to a file, always reaped.

Signals go to the whole group so a component's children (a shell, a server's workers) never
outlive it. Every process the harness starts goes through here.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from harness import secrets
from harness.deploy import owner
from harness.errors import ComponentFailed


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class Readiness:
    """How a process says it is ready: a command that exits 0, a line in what it logged since
    it started, an HTTP GET answering 2xx on its port, or else a TCP connect to its port (no
    port: as soon as it runs)."""

    port: int | None = None
    http: str | None = None
    command: tuple[str, ...] = ()
    log: str | None = None  # a regular expression
    host: str = "127.0.0.1"

    def poll_s(self) -> float:
        return 0.25 if self.command else 0.02  # a command is a process start each time

    def answers(self, process: ManagedProcess) -> bool:
        if self.command:
            try:
                done = subprocess.run(
                    self.command, env=process.env, cwd=process.cwd, capture_output=True,
                    timeout=10, check=False,
                )  # fmt: skip
            except (OSError, subprocess.TimeoutExpired):
                return False
            return done.returncode == 0
        if self.log is not None:
            return re.search(self.log, process.logged()) is not None
        return self.port is None or reachable(self.host, self.port, self.http)

    def wait_external(self, name: str, timeout_s: float) -> None:
        """An external component is only reached: ready once its port (or http) answers."""
        assert self.port is not None, "an external component has an address"
        deadline = time.monotonic() + timeout_s
        while not reachable(self.host, self.port, self.http):
            if time.monotonic() > deadline:
                where = f"http://{self.host}:{self.port}{self.http}" if self.http else "it"
                raise ComponentFailed(
                    name, f"(external, {self.host}:{self.port}) did not answer: {where} "
                    f"refused or timed out for {timeout_s:g}s",
                )  # fmt: skip
            time.sleep(0.25)


class ManagedProcess:
    """One OS process of a component, with its log file and its process group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.started_at: float | None = None
        self.ready_s: float | None = None  # from start until it first answered
        self.log_start = 0  # where this start's lines begin in a log kept across restarts

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = owner.owned(self.env if self.env is not None else secrets.inherited(os.environ))
        self.started_at = time.time()
        with self.log_path.open("ab") as log:
            self.log_start = log.tell()
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ComponentFailed(self.name, f"could not start {self.argv[0]}: {exc}") from None
        owner.record(self.proc.pid, self.name)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def running_pid(self) -> int | None:
        return self.proc.pid if self.running() and self.proc else None

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if still running after ``timeout`` (or never started)."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def logged(self) -> str:
        """What this process logged since it started."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self.log_start)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float, ready: Readiness) -> None:
        """Poll until it says it is ready; raise with its log tail if it does not in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            code = self.returncode()
            if code is not None:
                raise ComponentFailed(self.name, f"exited with code {code} at start", self.tail())
            if ready.answers(self):
                if self.started_at is not None:
                    self.ready_s = round(time.time() - self.started_at, 3)
                return
            if time.monotonic() > deadline:
                raise ComponentFailed(
                    self.name, f"was not ready after {timeout_s:g} s", self.tail()
                )
            time.sleep(ready.poll_s())

    def tail(self) -> str:
        return log_tail(self.log_path)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the whole process group; a group already gone is not an error."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)

    def pause(self, settle_s: float = 1.0) -> None:
        """SIGSTOP, and wait (briefly) until the kernel says it stopped: then the fault is real."""
        self.signal(signal.SIGSTOP)
        self.paused = True
        if self.proc is None:
            return
        deadline = time.monotonic() + settle_s
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(self.proc.pid)
            while process.status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
                time.sleep(0.001)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; reaps the process. Idempotent."""
        if self.proc is None:
            return
        if self.paused:
            self.resume()  # a stopped process cannot act on SIGTERM
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace_s)
        # Kill the group even when the leader exited: its children may not have.
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)


def reachable(host: str, port: int, http_path: str | None) -> bool:
    """A TCP connect to host:port succeeds, or with ``http_path``, a GET there answers 2xx."""
    if http_path is None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    try:
        # trust_env=False: an http_proxy in the environment must not intercept loopback.
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}{http_path}"
        response = httpx.get(url, timeout=1.0, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.is_success
