"""The harness's errors, and the exit code each kind of error means to a CI pipeline.

The tree::

    HarnessError                      (exit 2 unless a branch says otherwise)
    ├── SpecError                     exit 3: bad input; names file, line and field
    ├── EnvironmentProblem            exit 2: the machine cannot run the experiment
    │   ├── MissingComponent          a binary is not installed; says how to install it
    │   ├── PortTaken                 a fixed port is already in use
    │   └── ComponentFailed           a component exited or never became ready; carries its log tail
    └── Interrupted                   SIGINT or SIGTERM arrived; exit 128 + signal number

Users never see a traceback: the CLI prints ``str(error)`` and exits with ``error.exit_code``.
"""

from __future__ import annotations

import signal


class HarnessError(Exception):
    """Any error the harness reports to its user as one message."""

    exit_code = 2


class SpecError(HarnessError):
    """An experiment or topology file is wrong; the message names file, line and field."""

    exit_code = 3

    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        where = f"{file}:{line}" if line else file
        prefix = f"{where}: {field}: " if field else f"{where}: "
        super().__init__(prefix + message)


class EnvironmentProblem(HarnessError):
    """The experiment is fine, but this machine cannot run it as it is."""

    exit_code = 2


class MissingComponent(EnvironmentProblem):
    """A real component the run needs is not installed."""

    def __init__(self, component: str, install_hint: str) -> None:
        self.component = component
        self.install_hint = install_hint
        super().__init__(f"{component} is not installed; install it with: {install_hint}")


class PortTaken(EnvironmentProblem):
    """A port a component is pinned to is already in use."""

    def __init__(self, component: str, port: int) -> None:
        self.component = component
        self.port = port
        super().__init__(f"{component}: port 127.0.0.1:{port} is already in use")


class ComponentFailed(EnvironmentProblem):
    """A component exited at start or did not become ready in time."""

    def __init__(self, component: str, reason: str, log_tail: str = "") -> None:
        self.component = component
        self.reason = reason
        self.log_tail = log_tail
        text = f"{component} {reason}"
        if log_tail:
            text += "\n--- last lines of its log ---\n" + log_tail.rstrip()
        super().__init__(text)


class Interrupted(HarnessError):
    """A signal asked the run to stop; teardown still runs before this reaches the CLI."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}; everything was torn down")


class Aborted(HarnessError):
    """An abort condition fired, or the run passed its time limit; faults were healed at once."""

    exit_code = 2

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"aborted: {reason}")
