"""Benchmark: time from `harness run` to the first request, and wall time per declared second.

Runs `harness run experiments/slow-consumer.yaml` (a 60 s load) several times and reports the
median of each figure. The first request is the first `invoke` line of the run's
ledger/sent.jsonl; the declared duration is the experiment's load duration.

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

from harness.units import parse_duration

ROOT = Path(__file__).resolve().parents[1]


def one_run(experiment: str, extra: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as runs:
        started = time.time()
        proc = subprocess.run(
            [sys.executable, "-m", "harness", "run", experiment, "--runs-dir", runs, *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        wall = time.time() - started
        (run_dir,) = Path(runs).iterdir()
        journal = json.loads((run_dir / "journal.json").read_text())
        with (run_dir / "ledger" / "sent.jsonl").open() as sent:
            first_request = json.loads(sent.readline())["t"]
        last_event = max(e["t_complete"] for e in journal["timeline"])
    declared = parse_duration(journal["load"]["duration"])
    return {
        "exit": proc.returncode,
        "first_request_s": first_request - started,
        "wall_s": wall,
        "wall_per_declared": wall / declared,
        # From the drain's end (the last event) to the harness's exit: judging and teardown.
        "judge_and_teardown_s": started + wall - last_event,
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
    print(f"median of {args.runs} runs:")
    for key in ("first_request_s", "wall_s", "wall_per_declared", "judge_and_teardown_s"):
        print(f"  {key}: {statistics.median(r[key] for r in results):.3f}")


if __name__ == "__main__":
    main()
