"""Benchmark: the highest rate one load process sends, with the full ledger, beside plain Locust.

Against a target that answers at once (a minimal HTTP endpoint written here, answering 202 to
every POST on one asyncio loop), for T seconds each, K times in turn:

- plain Locust: a `FastHttpUser` with no wait and no ledger, U users, its count of requests;
- the harness's load, open model, asked for far more than it can send (`--ask`), so that the
  rate it reaches is its ceiling: every acknowledged send in `ledger/sent.jsonl`, per second;
- the same with `load.workers: N` for each N of `--workers` (a master and N processes);
- publishing straight into a Redis stream (a `redis-server` started here), one process.

The ratio of the harness's rate to plain Locust's is the ledger's cost. Medians and spread:

    .venv/bin/python bench/load_ceiling.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from harness import components  # noqa: E402
from harness.load import LoadPlan, LoadProcess, Publish  # noqa: E402

ENDPOINT = """\
import asyncio, sys
ANSWER = b"HTTP/1.1 202 Accepted\\r\\nContent-Length: 2\\r\\n\\r\\n{}"
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            size = next((int(l.split(b":")[1]) for l in head.split(b"\\r\\n")
                         if l.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(size)
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    await (await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))).serve_forever()
asyncio.run(main())
"""
PLAIN = """\
from locust import FastHttpUser, task
class Plain(FastHttpUser):
    @task
    def send(self):
        self.client.post("/jobs", data='{"id": "x", "payload": {"seq": 1}}',
                         headers={"Content-Type": "application/json"})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def started(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{argv[0]} did not listen on {port}")


def plain_locust(folder: Path, url: str, users: int, seconds: int) -> float:
    """Requests per second of plain Locust, from its own final statistics."""
    locustfile = folder / "plain.py"
    locustfile.write_text(PLAIN)
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--users",
         str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s", "--host", url,
         "--json", "--only-summary", "--loglevel", "ERROR"],
        capture_output=True, text=True, cwd=folder, timeout=seconds + 60,
    )  # fmt: skip
    stats = json.loads(result.stdout)
    requests = sum(entry["num_requests"] - entry["num_failures"] for entry in stats)
    spans = [entry["last_request_timestamp"] - entry["start_time"] for entry in stats]
    return float(requests / max(spans))


def harness_load(folder: Path, host: str, ask: float, seconds: int, **plan: object) -> float:
    """Acknowledged sends per second of the harness's open load, from its ledger."""
    ledger = folder / f"sent-{time.monotonic_ns()}.jsonl"
    process = LoadProcess(
        LoadPlan(host=host, path="/jobs", rate=ask, duration_s=seconds, metrics_port=free_port(),
                 ledger_path=ledger, log_path=folder / "load.log", model="open",
                 max_in_flight=200, **plan)  # type: ignore[arg-type]
    )  # fmt: skip
    process.start()
    try:
        process.wait(timeout=seconds + 60)
    finally:
        process.stop()
    oks = [json.loads(line)["t"] for line in ledger.read_text().splitlines() if '"ok"' in line]
    return len(oks) / (max(oks) - min(oks)) if len(oks) > 1 else 0.0


def median_spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.0f}/s  ({min(values):.0f} to {max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--seconds", type=int, default=15, help="each run's length (default 15)")
    parser.add_argument("--users", type=int, default=20, help="plain Locust's users (default 20)")
    parser.add_argument("--ask", type=float, default=20000, help="the rate asked (default 20000)")
    parser.add_argument("--workers", default="1,2", help="load.workers to try (default 1,2)")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    redis_port = free_port()
    with tempfile.TemporaryDirectory(prefix="harness-ceiling-") as tmp:
        folder = Path(tmp)
        (folder / "endpoint.py").write_text(ENDPOINT)
        endpoint = started([sys.executable, str(folder / "endpoint.py"), str(port)], port)
        redis = started([str(components.find("redis-server")), "--port", str(redis_port),
                         "--save", "", "--appendonly", "no"], redis_port)  # fmt: skip
        kinds: dict[str, Callable[[], float]] = {
            "plain Locust (FastHttpUser)": lambda: plain_locust(
                folder, url, args.users, args.seconds
            ),
            "harness load, one process": lambda: harness_load(folder, url, args.ask, args.seconds),
        }
        for n in (int(w) for w in args.workers.split(",") if w):
            kinds[f"harness load, workers: {n}"] = lambda n=n: harness_load(  # type: ignore[misc]
                folder, url, args.ask, args.seconds, workers=n, master_port=free_port()
            )
        kinds["harness load, publish into redis-stream"] = lambda: harness_load(
            folder, f"redis://127.0.0.1:{redis_port}", args.ask, args.seconds,
            publish=Publish("redis-stream", "ceiling"),
        )  # fmt: skip
        found: dict[str, list[float]] = {name: [] for name in kinds}
        try:
            for _ in range(args.runs):  # interleaved, so that a noisy minute hits each alike
                for name, measure in kinds.items():
                    found[name].append(measure())
        finally:
            endpoint.kill()
            redis.kill()
    plain = statistics.median(found["plain Locust (FastHttpUser)"])
    for name, values in found.items():
        print(
            f"{name:42} {median_spread(values)}  {statistics.median(values) / plain:5.2f} of plain"
        )


if __name__ == "__main__":
    main()
