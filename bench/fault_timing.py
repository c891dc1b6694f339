"""Benchmark: how late each kind of fault takes effect, and how long its heal takes.

Runs every experiment of the catalogue (or reads run folders already made) and reads each
journal's fault events: how late each apply and heal was invoked against its scheduled time,
and how late it was in effect (invoked late, plus how long the operation took: for a heal of
``kill`` or ``restart`` that includes starting the process and waiting until it is ready).
Prints a Markdown table for docs/benchmarks.md.

    .venv/bin/python bench/fault_timing.py --runs 1            # run the catalogue once
    .venv/bin/python bench/fault_timing.py --from-runs runs/   # read existing run folders
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


def run_catalogue(runs_dir: Path, times: int) -> None:
    for _ in range(times):
        for experiment in sorted((ROOT / "experiments").glob("*.yaml")):
            print(f"running {experiment.name}", file=sys.stderr)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "harness",
                    "run",
                    str(experiment),
                    "--runs-dir",
                    str(runs_dir),
                ],
                cwd=ROOT,
                capture_output=True,
            )


def delays(runs_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """Per ``fault.apply:<kind>`` and heal: (ms late against the schedule, ms until in effect)."""
    found: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for journal_path in runs_dir.glob("*/journal.json"):
        journal = json.loads(journal_path.read_text())
        for event in journal["timeline"]:
            value = event["value"]
            if not event["kind"].startswith("fault.") or "late_s" not in value:
                continue
            late = value["late_s"] * 1000
            took = (event["t_complete"] - event["t_invoke"]) * 1000
            found[f"{event['kind']}:{value['fault']}"].append((late, late + took))
    return found


def row(name: str, values: list[tuple[float, float]]) -> str:
    late = [v[0] for v in values]
    effect = [v[1] for v in values]
    return (
        f"| {name} | {len(values)} | {statistics.median(late):.1f} | {max(late):.1f} "
        f"| {statistics.median(effect):.1f} | {max(effect):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="times to run the catalogue")
    parser.add_argument("--from-runs", type=Path, help="read these run folders instead")
    args = parser.parse_args()
    if args.from_runs:
        found = delays(args.from_runs)
    else:
        with tempfile.TemporaryDirectory(prefix="harness-bench-") as runs:
            run_catalogue(Path(runs), args.runs)
            found = delays(Path(runs))
    print("| event | n | late, median ms | late, worst | in effect, median ms | in effect, worst |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key in sorted(found):
        print(row(key, found[key]))
    print(row("all", [v for values in found.values() for v in values]))


if __name__ == "__main__":
    main()
