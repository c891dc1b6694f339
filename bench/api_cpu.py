"""Benchmark: a reference API's CPU per request, alone (redis-streams or nats).

Every message a run sends is one ``POST /jobs``, so the API's cost per request is the part of
the target's cost per message that no batching reaches. This starts the target's broker and
its API (no Toxiproxy, no Locust), sends ``--rate`` requests a second for ``--seconds`` over eight
keep-alive connections from a plain asyncio client, and prints the API process's CPU
milliseconds per request, the median of ``--runs`` runs with the range. ``--targets`` points
at another copy of ``targets/`` to compare, side by side, with an earlier revision:

    .venv/bin/python bench/api_cpu.py --runs 3 [--target nats]
    mkdir -p /tmp/before && git archive HEAD~1 targets | tar -x -C /tmp/before
    .venv/bin/python bench/api_cpu.py --runs 3 --targets /tmp/before/targets
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.deploy.ports import PortAllocator  # noqa: E402
from harness.deploy.process import reachable  # noqa: E402

CONNECTIONS = 8
# Per target: its broker's command line (as its target file starts it), the API's script, and
# the variable that gives the API the broker's address.
BROKERS = {
    "redis-streams": (
        "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly yes "
        "--appendfsync always --dir {data}",
        "redis_streams/api.py",
        "REDIS_ADDR",
    ),
    "nats": (
        "nats-server --jetstream --addr 127.0.0.1 --port {port} --store_dir {data}",
        "nats/api.py",
        "NATS_ADDR",
    ),
}


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def send_jobs(port: int, rate: float, seconds: float) -> dict[bytes, int]:
    """POST /jobs at ``rate`` a second; how many answers of each status."""
    statuses: dict[bytes, int] = {}
    due: asyncio.Queue[int | None] = asyncio.Queue()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (n := await due.get()) is not None:
            body = b'{"id": "job-%d", "payload": {"n": %d}}' % (n, n)
            writer.write(b"POST /jobs HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            statuses[head[9:12]] = statuses.get(head[9:12], 0) + 1
        writer.close()

    senders = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    start, n = time.monotonic(), 0
    while (now := time.monotonic()) - start < seconds:
        await asyncio.sleep(max(0.0, start + n / rate - now))
        due.put_nowait(n)
        n += 1
    for _ in senders:
        due.put_nowait(None)
    await asyncio.gather(*senders)
    return statuses


def wait_for(port: int, what: str, http_path: str | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not reachable("127.0.0.1", port, http_path):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start within {timeout:g} s")
        time.sleep(0.05)


def one_run(target: str, targets: Path, rate: float, seconds: float) -> float:
    """Milliseconds of the API's CPU per request in one run."""
    command, script, address = BROKERS[target]
    ports = PortAllocator()
    broker_port, api_port = ports.allocate(), ports.allocate()
    with tempfile.TemporaryDirectory(prefix="harness-api-cpu-") as data:
        argv = shlex.split(command.format(port=broker_port, data=data))
        broker = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = {
            **os.environ,
            "PORT": str(api_port),
            address: f"127.0.0.1:{broker_port}",
            "MAX_BACKLOG": "20000",
            "NOTIFY_MODE": "outbox",
        }
        processes = [broker]
        try:
            wait_for(broker_port, argv[0])
            api = subprocess.Popen(
                [sys.executable, str(targets / script)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            processes.append(api)
            wait_for(api_port, "the API", "/healthz")
            time.sleep(0.5)  # past its first backlog query
            before = cpu_seconds(api.pid)
            statuses = asyncio.run(send_jobs(api_port, rate, seconds))
            spent = cpu_seconds(api.pid) - before
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(10)
    requests = sum(statuses.values())
    if statuses.get(b"202") != requests:
        raise SystemExit(f"not every request was accepted: {statuses}")
    return spent * 1000 / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--targets", type=Path, default=ROOT / "targets")
    parser.add_argument("--target", choices=sorted(BROKERS), default="redis-streams")
    args = parser.parse_args()
    server = BROKERS[args.target][0].split()[0]
    if shutil.which(server) is None:
        raise SystemExit(f"{server} is not on the PATH: run `bash .ci/setup` first")
    figures = [
        one_run(args.target, args.targets, args.rate, args.seconds) for _ in range(args.runs)
    ]
    print(
        f"{args.target} API CPU per request: {statistics.median(figures):.3f} ms "
        f"(min {min(figures):.3f}, max {max(figures):.3f}, {args.runs} runs of "
        f"{args.rate:g}/s for {args.seconds:g} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
