"""Benchmark: how late each kind of fault takes effect, and how long its heal takes.

Runs every experiment of the catalogue (or reads run folders already made) and reads each
journal's fault events: an apply's delay is how late it was invoked against its scheduled time
plus how long the apply took (the moment the fault is in effect); a heal's likewise.

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


def delays(runs_dir: Path) -> dict[str, list[float]]:
    """Milliseconds from scheduled time to effect, per ``fault.apply:<kind>`` and heal."""
    found: dict[str, list[float]] = defaultdict(list)
    for journal_path in runs_dir.glob("*/journal.json"):
        journal = json.loads(journal_path.read_text())
        for event in journal["timeline"]:
            value = event["value"]
            if not event["kind"].startswith("fault.") or "late_s" not in value:
                continue
            took = event["t_complete"] - event["t_invoke"]
            found[f"{event['kind']}:{value['fault']}"].append((value["late_s"] + took) * 1000)
    return found


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
    print(f"{'event:fault':28} {'n':>4} {'median ms':>10} {'worst ms':>10}")
    for key in sorted(found):
        values = found[key]
        print(f"{key:28} {len(values):4} {statistics.median(values):10.1f} {max(values):10.1f}")


if __name__ == "__main__":
    main()
