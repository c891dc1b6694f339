"""The command seam of a target's own faults: each command filled in for one replica and run on
the harness's host, its output kept in the run's ``logs/faults.log``.

On the host rather than in the replica's container, so that one declaration serves every
deployer: the host reaches a container at its address on the run's network as it reaches a
local process on 127.0.0.1, and the harness's interpreter (``{python}``) has the target's
client libraries.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import secrets
from harness.deploy.base import Deployment, Layout, fill_outside
from harness.errors import EnvironmentProblem
from harness.store import RunFolder

_OUTPUT_TAIL = 400  # characters of a failed command's output in its error


class HostCommands:
    """Runs a target's fault commands for the replicas of one deployment."""

    def __init__(
        self, deployment: Deployment, topology_dir: Path, run_dir: Path, where: Layout
    ) -> None:
        self.deployment, self.topology_dir, self.run_dir = deployment, topology_dir, run_dir
        self.where = where
        self.log = RunFolder(run_dir).log("faults")

    def run(
        self, argv: Sequence[str], replica: str, settings: Mapping[str, str], timeout_s: float
    ) -> None:
        instance = next(i for i in self.deployment.instances if i.name == replica)
        values = {
            "host": instance.host, "port": str(instance.port), "name": replica,
            "python": sys.executable,
        }  # fmt: skip
        own = {f"var:{key}": value for key, value in settings.items()}
        command = [
            fill_outside(arg, self.topology_dir, self.run_dir, self.where, values, own)
            for arg in argv
        ]
        shown = shlex.join(command)
        env = {**secrets.inherited(os.environ), "PYTHONUNBUFFERED": "1"}
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            self._keep(shown, None, "")
            raise EnvironmentProblem(f"{shown}: no answer within {timeout_s:g}s") from None
        except OSError as exc:
            raise EnvironmentProblem(f"{shown}: {exc.strerror}") from None
        output = done.stdout + done.stderr
        self._keep(shown, done.returncode, output)
        if done.returncode != 0:
            tail = output.strip()[-_OUTPUT_TAIL:]
            raise EnvironmentProblem(f"{shown} exited with {done.returncode}: {tail}")

    def _keep(self, command: str, code: int | None, output: str) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", encoding="utf-8") as handle:
            stamp = time.strftime("%H:%M:%S")
            handle.write(f"{stamp} $ {command}\n{output}")
            handle.write(f"{stamp} exit {code if code is not None else 'timeout'}\n")
