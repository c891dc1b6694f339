"""Benchmark: what a run costs beyond its declared time, and what the harness itself uses.

Runs `harness run experiments/slow-consumer.yaml` (a 60 s load) several times and reports, per
run and as the median and spread:

- overhead_s: wall time minus the declared load and the drain the run actually waited for;
- first_request_s: from launching `harness run` to the first send in ledger/sent.jsonl;
- first_metric_s: from launching `harness run` to the first sample queryable in the run's
  Prometheus (polled every 50 ms on its HTTP API);
- teardown_s: the `teardown` event, from the end of judging to the last process reaped;
- end_to_reaped_s: from the run's end (the drain) to the last process reaped (judging and
  teardown);
- harness_cpu_pct: CPU of the harness process itself (not Locust, not the target) during the
  steady part of the load (load start + 5 s to load end - 2 s), as % of one core;
- load_cpu_pct: CPU of Locust over the load, as % of one core.

    .venv/bin/python bench/run_overhead.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from harness.units import parse_duration

ROOT = Path(__file__).resolve().parents[1]
FIGURES = (
    "overhead_s",
    "first_request_s",
    "first_metric_s",
    "teardown_s",
    "end_to_reaped_s",
    "harness_cpu_pct",
    "load_cpu_pct",
)


def _prometheus_port(harness: psutil.Process) -> int | None:
    for child in harness.children(recursive=True):
        try:
            for arg in child.cmdline():
                if arg.startswith("--web.listen-address="):
                    return int(arg.rsplit(":", 1)[1])
        except psutil.Error:
            continue
    return None


def _first_metric(harness: psutil.Process, proc: subprocess.Popen[str]) -> float | None:
    """Poll until the run's Prometheus answers a query with a sample; the time it did."""
    port = None
    while proc.poll() is None:
        port = port or _prometheus_port(harness)
        if port:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/query", params={"query": "up"}, timeout=1
                ).json()
                if answer["data"]["result"]:
                    return time.time()
            except (httpx.HTTPError, ValueError, KeyError):
                pass
        time.sleep(0.05)
    return None


def one_run(experiment: str, extra: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as runs:
        started = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", experiment, "--runs-dir", runs, *extra],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        harness = psutil.Process(proc.pid)
        first_metric = _first_metric(harness, proc)
        cpu: list[tuple[float, float]] = []  # (time, CPU of the harness process alone)
        while proc.poll() is None:
            try:
                times = harness.cpu_times()
                cpu.append((time.time(), times.user + times.system))
            except psutil.Error:
                break
            time.sleep(0.5)
        proc.wait()
        wall = time.time() - started
        (run_dir,) = Path(runs).iterdir()
        journal = json.loads((run_dir / "journal.json").read_text())
        with (run_dir / "ledger" / "sent.jsonl").open() as sent:
            first_request = json.loads(sent.readline())["t"]
        events = {e["kind"]: e for e in journal["timeline"]}
    for check in journal["checks"]:
        if check["verdict"] != "held":
            print(f"  {check['verdict']}: {check['name']}: {check['observed']}", flush=True)
    moments = journal["moments"]
    declared = parse_duration(journal["load"]["duration"])
    drain = events["drain"]["t_complete"] - events["drain"]["t_invoke"]
    steady = [(t, c) for t, c in cpu if moments["load.start"] + 5 <= t <= moments["load.end"] - 2]
    (t0, c0), (t1, c1) = steady[0], steady[-1]
    load_s = moments["load.end"] - moments["load.start"]
    return {
        "exit": proc.returncode,
        "overhead_s": wall - declared - drain,
        "first_request_s": first_request - started,
        "first_metric_s": (first_metric or float("nan")) - started,
        "teardown_s": events["teardown"]["t_complete"] - events["teardown"]["t_invoke"],
        "end_to_reaped_s": events["teardown"]["t_complete"] - moments["end"],
        "harness_cpu_pct": 100 * (c1 - c0) / (t1 - t0),
        "load_cpu_pct": 100 * journal["components"]["load"]["cpu_s"] / load_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--experiment", default="experiments/slow-consumer.yaml")
    parser.add_argument("--set", action="append", default=[], help="passed to harness run")
    args = parser.parse_args()
    extra = [a for s in args.set for a in ("--set", s)]
    results = []
    for index in range(args.runs):
        result = one_run(args.experiment, extra)
        results.append(result)
        print(f"run {index + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()))
    print(f"median of {args.runs} runs (min to max):")
    for key in FIGURES:
        values = [r[key] for r in results]
        print(f"  {key}: {statistics.median(values):.3f} ({min(values):.3f} to {max(values):.3f})")


if __name__ == "__main__":
    main()
