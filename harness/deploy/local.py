"""The local deployer: every component replica a process on a free 127.0.0.1 port, and the
external components (already running elsewhere) only reached.

Components start in dependency order (a component waits for what its links and addresses
point at), each layer in parallel, and each is polled on its own protocol until ready.
Teardown stops them in reverse order.
"""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

from harness.deploy.base import Instance, Planned
from harness.deploy.process import ManagedProcess
from harness.errors import EnvironmentProblem


def _process(instance: Instance) -> ManagedProcess:
    return ManagedProcess(
        instance.name, instance.argv, instance.log_path, instance.env, instance.cwd
    )


class LocalDeployment(Planned):
    """The running processes of one topology."""

    def launch(self, layer: list[Instance], pool: ThreadPoolExecutor) -> None:
        for instance in layer:
            process = _process(instance)
            self.processes[instance.name] = process
            process.start()

    def await_ready(self, instance: Instance) -> None:
        self.processes[instance.name].wait_ready(instance.ready_timeout_s, instance.ready)

    def remove(self, instance: Instance) -> None:
        if (process := self.processes.get(instance.name)) is not None:
            process.stop()

    # The process seam of faults (harness.faults.Processes), by replica name.

    def send_signal(self, replica: str, signum: int) -> None:
        process = self.processes[replica]
        if signum == signal.SIGSTOP:
            process.pause()  # remembered, so teardown resumes it before stopping it
        elif signum == signal.SIGCONT:
            process.resume()
        else:
            process.signal(signum)

    def kill(self, replica: str) -> None:
        self.processes[replica].kill()

    def stop(self, replica: str) -> None:
        self.processes[replica].stop()

    def start(self, replica: str) -> None:
        instance = self.instance(replica)
        process = _process(instance)
        self.processes[replica] = process
        process.start()
        process.wait_ready(instance.ready_timeout_s, instance.ready)

    # A process of this host has no network namespace or limits of its own: the loader refuses
    # these faults on this deployer first (their ``deployer``), so this only backs it up.

    def cut(self, replica: str, share: float = 1.0) -> None:
        raise EnvironmentProblem(
            "a cut needs the docker deployer: a process has no network of its own"
        )

    def limit(self, replica: str, cpus: float | None, memory: int | None) -> None:
        raise EnvironmentProblem("a squeeze needs the docker deployer: a container's limits")

    def stress(self, replica: str, workers: int) -> None:
        raise EnvironmentProblem("cpu_stress needs the docker deployer: a container to share")

    def rejoin(self, replica: str) -> None:
        """Nothing here was cut, limited or stressed: there is nothing to undo."""

    unlimit = unstress = rejoin
