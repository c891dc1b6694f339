"""Benchmark: a target's highest sustained message rate and its catch-up rate, on this machine.

It calls `harness capacity` (docs/commands.md gives the criterion) on redis-streams by default.

Everything on one machine: Locust, the API, the broker, the workers and the sink, every link
through Toxiproxy, Prometheus and the probe scraping. The measurement is kept in a folder of
this script's own (--store to keep it), not where experiments read it.

    .venv/bin/python bench/capacity.py --sweeps 3
    .venv/bin/python bench/capacity.py --rates 500,1000 --set worker.replicas=4
    .venv/bin/python bench/capacity.py --target rabbitmq --rates 200,300,400
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def measure(target: str, flags: list[str], store: Path | None = None) -> dict[str, Any]:
    """`harness capacity TARGET FLAGS` (its lines shown as it measures); the measurement."""
    with tempfile.TemporaryDirectory(prefix="harness-capacity-") as tmp:
        kept = store or Path(tmp) / "store"
        command = [sys.executable, "-m", "harness", "capacity", target, *flags,
                   "--runs-dir", str(Path(tmp) / "runs")]  # fmt: skip
        env = {**os.environ, "HARNESS_CAPACITY_DIR": str(kept)}
        done = subprocess.run(command, cwd=ROOT, env=env)
        if done.returncode != 0:
            sys.exit(done.returncode)
        newest = max(kept.glob("*.json"), key=lambda p: p.stat().st_mtime)
        found: dict[str, Any] = json.loads(newest.read_text())
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", default="3")
    parser.add_argument("--target", default="redis-streams", help="a name in targets/")
    parser.add_argument("--rates", help="rates to try in order (default: doubling from 50/s)")
    parser.add_argument(
        "--set",
        action="append",
        default=["worker.env.PROCESS_MS=0"],
        help="passed to harness capacity (default: worker.env.PROCESS_MS=0, no simulated work)",
    )
    parser.add_argument("--store", help="keep the measurement there (default: a temporary folder)")
    args = parser.parse_args()
    flags = [a for s in args.set for a in ("--set", s)] + ["--sweeps", args.sweeps]
    flags += ["--rates", args.rates] if args.rates else []
    found = measure(args.target, flags, Path(args.store) if args.store else None)
    print(f"highest rate sustained, per sweep: {found['rates_per_s']}; "
          f"median {found['rate_per_s']:g}/s")  # fmt: skip
    catch_ups = [round(r) for r in found["catch_ups_per_s"]]
    print(f"catch-up rate, per sweep: {catch_ups}; median {found['catch_up_per_s'] or 0:.0f}/s, "
          f"draining {found['backlog']} messages")  # fmt: skip


if __name__ == "__main__":
    main()
