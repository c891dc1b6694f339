"""Benchmark: the figures brokers are compared by, for each target.

- time to ready: from the broker's start to its readiness check passing, and from the first
  component's start to the last one's;
- recovery after a worker kill: at 200 messages/s with 5 ms of work per message (the two workers
  busy about 70 % of the time), one of them is SIGKILLed and restarted 5 s later; the time from
  the kill until the backlog is back under 50 for good;
- capacity: the highest rate sustained, as `harness capacity` measures it (one sweep).

    .venv/bin/python bench/brokers.py --runs 3
    .venv/bin/python bench/brokers.py --targets rabbitmq,nats --runs 1 --rates 300,400
    .venv/bin/python bench/brokers.py --rates ''    # no capacity sweep
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import capacity

ROOT = Path(__file__).resolve().parents[1]

KILL = """\
name: worker-kill-recovery
target: {target}
overrides:
  worker: {{env: {{PROCESS_MS: 5}}}}
load: {{rate: 200/s, duration: 40s}}
drain: 30s
timeline:
  - {{name: crash, at: 10s, for: 5s, fault: kill, component: worker, count: 1}}
checks:
  - name: recovered
    recovers: >-
      sum(harness_queue_depth{{queue="jobs"}}) + sum(harness_queue_inflight{{queue="jobs"}}) < 50
    after: crash.start
    within: 40s
  - {{name: nothing lost, ledger: lost, expect: "== 0"}}
"""


def kill_run(target: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="harness-brokers-") as tmp:
        experiment = Path(tmp) / "kill.yaml"
        experiment.write_text(KILL.format(target=ROOT / "targets" / f"{target}.yaml"))
        runs = Path(tmp) / "runs"
        subprocess.run(
            [sys.executable, "-m", "harness", "run", str(experiment), "--runs-dir", str(runs),
             "--quiet"],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        (run_dir,) = runs.iterdir()
        journal = json.loads((run_dir / "journal.json").read_text())
    components = {k: v for k, v in journal["components"].items() if v.get("port") is not None}
    ready = [e["t_complete"] for e in journal["timeline"] if e["kind"] == "component.ready"]
    first_start = min(c["started_at"] for c in components.values())
    checks = {c["name"]: c for c in journal["checks"]}
    found = re.match(r"recovered ([\d.]+)s", checks["recovered"]["observed"])
    if checks["nothing lost"]["verdict"] != "held":
        print(f"  {target}: lost messages: {checks['nothing lost']['observed']}", flush=True)
    return {
        "broker_ready_s": components["broker"]["ready_s"],
        "target_ready_s": max(ready) - first_start,
        "kill_recovery_s": float(found.group(1)) if found else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="redis-streams,rabbitmq,nats")
    parser.add_argument("--runs", type=int, default=3, help="runs of the kill experiment")
    parser.add_argument("--rates", default="200,300,400,500,600,700,800",
                        help="the capacity sweep's rates ('' for none)")  # fmt: skip
    args = parser.parse_args()
    for target in args.targets.split(","):
        results = [kill_run(target) for _ in range(args.runs)]
        for index, result in enumerate(results, 1):
            print(f"{target} run {index}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()))
        print(f"{target}: median of {args.runs} runs (min to max):", flush=True)
        for key in results[0]:
            values = [r[key] for r in results]
            print(
                f"  {key}: {statistics.median(values):.2f} ({min(values):.2f} to {max(values):.2f})"
            )
        if not args.rates:
            continue
        print(f"{target}: capacity sweep:", flush=True)
        flags = ["--set", "worker.env.PROCESS_MS=0", "--sweeps", "1", "--rates", args.rates]
        found = capacity.measure(target, flags)
        print(f"  highest rate sustained: {found['rate_per_s']:g}/s", flush=True)


if __name__ == "__main__":
    main()
