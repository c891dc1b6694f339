"""Benchmark: the highest message rate a target (default redis-streams) sustains end to end.

Everything on one machine: Locust, the API, the broker, the workers and the sink, every link through
Toxiproxy, Prometheus and the probe scraping. For each rate, in rising order, a 30 s run
without faults; a rate holds when Locust offered it (at least 95 % of the rate acknowledged
per second), the sink processed it (at least 95 %), the backlog stayed under one second's
worth of messages from 10 s after the load started, and nothing was lost. The sweep stops at
the first rate that does not hold; each sweep reports the highest rate that held.

    .venv/bin/python bench/capacity.py --sweeps 3
    .venv/bin/python bench/capacity.py --rates 500,1000 --set worker.replicas=4
    .venv/bin/python bench/capacity.py --target rabbitmq --rates 200,300,400
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENT = """\
name: capacity-{rate}
target: {target}
load: {{rate: {rate}/s, duration: 30s}}
drain: 20s
checks:
  - name: offered
    query: 'sum(rate(harness_load_requests_total{{outcome="ok"}}[10s]))'
    at: load.end
    expect: ">= {offered}"
  - name: processed
    query: 'sum(rate(harness_messages_processed_total[10s]))'
    at: load.end
    expect: ">= {offered}"
  - name: backlog stable
    query: 'sum(harness_queue_depth{{queue="jobs"}})'
    from: load.start+10s
    to: load.end
    expect: "< {rate}"
  - {{name: nothing lost, ledger: lost, expect: "== 0"}}
"""


def holds(rate: int, extra: list[str], target: str = "redis-streams") -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="harness-capacity-") as tmp:
        experiment = Path(tmp) / "capacity.yaml"
        experiment.write_text(
            EXPERIMENT.format(
                rate=rate, offered=0.95 * rate, target=ROOT / "targets" / f"{target}.yaml"
            )
        )
        runs = Path(tmp) / "runs"
        subprocess.run(
            [sys.executable, "-m", "harness", "run", str(experiment), "--runs-dir", str(runs),
             *extra],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        (run_dir,) = runs.iterdir()
        journal = json.loads((run_dir / "journal.json").read_text())
    observed = "; ".join(f"{c['name']} {c['observed']}" for c in journal["checks"])
    return journal["verdict"] == "held", observed


def sweep(rates: list[int], extra: list[str], target: str = "redis-streams") -> int:
    best = 0
    for rate in rates:
        held, observed = holds(rate, extra, target)
        print(f"  {rate}/s: {'held' if held else 'not held'}: {observed}", flush=True)
        if not held:
            break
        best = rate
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--target", default="redis-streams", help="a name in targets/")
    parser.add_argument("--rates", default="500,750,1000,1250,1500,2000,2500,3000")
    parser.add_argument(
        "--set",
        action="append",
        default=["worker.env.PROCESS_MS=0"],
        help="passed to harness run (default: worker.env.PROCESS_MS=0, no simulated work)",
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    extra = [a for s in args.set for a in ("--set", s)]
    results = []
    for index in range(args.sweeps):
        print(f"sweep {index + 1}:", flush=True)
        results.append(sweep(rates, extra, args.target))
    print(f"highest rate held, per sweep: {results}; median {statistics.median(results):g}/s")


if __name__ == "__main__":
    main()
