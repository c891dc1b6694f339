"""Benchmark: CPU per message, per process, read from the journals of real runs.

Each run's journal records every process's CPU seconds (`components.*.cpu_s`, earlier lives of a
restarted replica included) and the harness's own (`harness_cpu_s`); the ledger says how many
messages were acknowledged. This prints, per component (replicas added up), the milliseconds of
CPU per acknowledged message, then two totals: the target's own processes (everything the
target file starts except its broker) and the whole run (the broker, Toxiproxy, Locust,
Prometheus and the harness included). With several journals, each figure is the median of the
runs, with the range.

    .venv/bin/python bench/cpu_per_message.py runs/*-slow-consumer/journal.json
    .venv/bin/python bench/cpu_per_message.py --run experiments/slow-consumer.yaml --runs 3
    .venv/bin/python bench/cpu_per_message.py --run experiments/slow-consumer.yaml --runs 3 \\
        --set target=rabbitmq
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a run starts around the target; everything else in `components` is the target's own.
INFRASTRUCTURE = ("prometheus", "toxiproxy", "load")
BROKER = "broker"
_TOTALS = ("target's own", "whole run")


def per_message(journal: dict[str, object]) -> dict[str, float]:
    """Milliseconds of CPU per acknowledged message: per component, and the two totals."""
    ledger = journal.get("ledger") or {}
    assert isinstance(ledger, dict)
    messages = int(ledger.get("acknowledged") or 0)
    if messages == 0:
        raise SystemExit(f"{journal.get('run_dir')}: no message was acknowledged")
    components = journal["components"]
    assert isinstance(components, dict)
    cpu: dict[str, float] = defaultdict(float)
    for name, record in components.items():
        cpu[record.get("component") or name] += float(record.get("cpu_s") or 0.0)
    cpu["harness"] = float(journal.get("harness_cpu_s") or 0.0)  # type: ignore[arg-type]
    figures = {name: seconds * 1000 / messages for name, seconds in cpu.items()}
    own = [n for n in figures if n not in (*INFRASTRUCTURE, BROKER, "harness")]
    figures["target's own"] = sum(figures[n] for n in own)
    figures["whole run"] = sum(v for n, v in figures.items() if n != "target's own")
    return figures


def run_journals(experiment: str, runs: int, sets: list[str]) -> list[dict[str, object]]:
    """Run the experiment ``runs`` times and return the journals."""
    journals = []
    with tempfile.TemporaryDirectory(prefix="harness-cpu-") as tmp:
        for _ in range(runs):
            argv = [sys.executable, "-m", "harness", "run", experiment, "--runs-dir", tmp,
                    "--quiet", *(arg for s in sets for arg in ("--set", s))]  # fmt: skip
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
            print(done.stdout.strip() or done.stderr.strip(), flush=True)
        for path in sorted(Path(tmp).glob("*/journal.json")):
            journals.append(json.loads(path.read_text()))
    return journals


def table(journals: list[dict[str, object]]) -> str:
    figures = [per_message(j) for j in journals]
    names = sorted({n for f in figures for n in f}, key=lambda n: (n in _TOTALS, n))
    lines = ["| process | ms of CPU per message | min to max |", "| --- | --- | --- |"]
    for name in names:
        values = [f.get(name, 0.0) for f in figures]
        median = statistics.median(values)
        bold = "**" if name in _TOTALS else ""
        lines.append(
            f"| {name} | {bold}{median:.2f}{bold} | {min(values):.2f} to {max(values):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journals", nargs="*", help="journal.json files of runs already made")
    parser.add_argument("--run", metavar="EXPERIMENT", help="make the runs first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    args = parser.parse_args()
    journals = [json.loads(Path(p).read_text()) for p in args.journals]
    if args.run:
        journals += run_journals(args.run, args.runs, args.set)
    if not journals:
        parser.error("give journal files, or --run EXPERIMENT")
    print(f"{len(journals)} run(s)")
    print(table(journals))


if __name__ == "__main__":
    main()
