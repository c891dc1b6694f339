"""Benchmark: the docker deployer against the local one.

Time to ready of the reference Redis Streams target (every component answering, images already
built), with each deployer, and the cost of each container fault (kill, pause, cut, and their
undoing) on a worker container. Prints Markdown tables for docs/benchmarks.md.

    .venv/bin/python bench/containers.py --runs 5
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.deploy import base, containers, images, local  # noqa: E402
from harness.deploy.ports import PortAllocator  # noqa: E402
from harness.loader import load_topology  # noqa: E402

TARGET = ROOT / "targets" / "redis-streams.yaml"


def local_ready(run_dir: Path) -> float:
    topology = load_topology(TARGET)
    where = base.layout(topology, PortAllocator())
    deployment = local.LocalDeployment(base.plan(topology, TARGET.parent, run_dir, where))
    started = time.perf_counter()
    try:
        deployment.up()
        return time.perf_counter() - started
    finally:
        deployment.down()


def docker_ready(run_dir: Path, faults: dict[str, list[float]] | None = None) -> float:
    topology = load_topology(TARGET)
    client = containers.connect()
    wanted = {
        n: images.ensure(client, images.image_kind(n, s)) for n, s in topology.components.items()
    }
    started = time.perf_counter()  # the network is part of it: every run makes its own
    network = containers.RunNetwork(client, run_dir.name)
    where = containers.place(
        base.layout(topology, PortAllocator()), topology, network, network.address()
    )
    layers = base.plan(topology, TARGET.parent, run_dir, where, images.PYTHON)
    binds = [f"{run_dir}:{run_dir}:rw", f"{TARGET.parent}:{TARGET.parent}:ro"]
    deployment = containers.DockerDeployment(client, network, layers, wanted, run_dir.name, binds)
    try:
        deployment.up()
        took = time.perf_counter() - started
        if faults is not None:
            container_faults(deployment, faults)
        return took
    finally:
        deployment.down()
        network.remove()


def container_faults(
    deployment: containers.DockerDeployment, costs: dict[str, list[float]]
) -> None:
    """Each fault and its undoing on worker-0, timed; restart waits until it is ready again."""
    replica = "worker-0"
    steps: list[tuple[str, Callable[[], None]]] = [
        ("pause", lambda: deployment.send_signal(replica, signal.SIGSTOP)),
        ("unpause", lambda: deployment.send_signal(replica, signal.SIGCONT)),
        ("cut", lambda: deployment.cut(replica)),
        ("rejoin", lambda: deployment.rejoin(replica)),
        ("kill", lambda: deployment.kill(replica)),
        ("start again, until ready", lambda: deployment.start(replica)),
    ]
    for name, step in steps:
        started = time.perf_counter()
        step()
        costs[name].append((time.perf_counter() - started) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    ready: dict[str, list[float]] = defaultdict(list)
    costs: dict[str, list[float]] = defaultdict(list)
    for n in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-docker-") as folder:
            run_dir = Path(folder) / f"bench-{n}"
            (run_dir / "logs").mkdir(parents=True)
            ready["local"].append(local_ready(run_dir))
            ready["docker"].append(docker_ready(run_dir, costs))
        print(f"run {n + 1}: local {ready['local'][-1]:.2f} s, docker {ready['docker'][-1]:.2f} s")
    print("\n| deployer | time to ready, median | min to max |\n| --- | --- | --- |")
    for name, values in ready.items():
        low, high = min(values), max(values)
        print(f"| {name} | {statistics.median(values):.2f} s | {low:.2f} to {high:.2f} |")
    print("\n| container fault | median | min to max |\n| --- | --- | --- |")
    for name, values in costs.items():
        low, high = min(values), max(values)
        print(f"| {name} | {statistics.median(values):.1f} ms | {low:.1f} to {high:.1f} |")


if __name__ == "__main__":
    main()
