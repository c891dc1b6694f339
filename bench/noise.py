"""Benchmark: does every pair of the catalogue give its verdict on a busy machine, and by how much?

Runs each pair of the catalogue (each experiment as shipped, which must hold, and each weakened
variant of the README's table, which must fail on the check that names its weakness;
tests/integration/catalogue.py; with --target, that target's own switches) K times with
`harness run --repeat K --json`, while busy loops (`python3 -c 'while True: pass'`, one per
--hogs) take cores for the whole benchmark. It prints,
per pair, how many runs gave the expected verdict and, per check, the verdicts and each run's
observed value beside what the check expects, with the share of its limit the median run used:
a recovery within 6 s of a 20 s window uses 0.30 of it; a bound "< 1100" met with a worst
value of 550 uses 0.50; for a bound from below ("> 500"), the limit over the value. The aim is
every pair right every time, with the median share at most 0.75 (and, for the check that must
fail, at least 1.33).

    .venv/bin/python bench/noise.py --runs 5                         # redis-streams, one hog
    .venv/bin/python bench/noise.py --runs 3 --target rabbitmq
    .venv/bin/python bench/noise.py --runs 5 --only slow-consumer --full-length
    .venv/bin/python bench/noise.py --runs 1 --hogs 2                # the whole machine taken
    .venv/bin/python bench/noise.py --runs 3 --set load.model=open   # every pair, open model
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.integration.catalogue import PAIRS, Variant, pairs_on  # noqa: E402

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
BOUND = re.compile(rf"(<=|>=|<|>|==|!=)\s*({NUMBER})\s*$")
RECOVERED = re.compile(rf"recovered ({NUMBER})s")
WITHIN = re.compile(rf"within ({NUMBER})s")


@contextlib.contextmanager
def hogs(count: int) -> Iterator[None]:
    """``count`` busy loops, each taking a core, until the block ends."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def share(expected: str, observed: str | None) -> float | None:
    """The share of its limit an observed value used (see the module docstring); None when the
    check has no limit to compare with (a ledger count == 0, a value that is not a number)."""
    if observed is None:
        return None
    within = WITHIN.search(expected)
    if within:  # a recovery
        found = RECOVERED.search(observed)
        return float(found.group(1)) / float(within.group(1)) if found else math.inf
    # "a to b over n samples", or a breach "v at +12s (3 of 40 samples breach)": the values only
    value_part = re.sub(r" at \+\S+", "", observed.split("(")[0])
    numbers = [float(n) for n in re.findall(NUMBER, value_part)]
    # "> 500 at fault.end", "lost == 0", "<expr> > 500 at least once from ...": its last bound
    bound = BOUND.search(expected.split(" at ")[0].split(" from ")[0])
    if not numbers or not bound:
        return None
    operator, limit = bound.group(1), float(bound.group(2))
    if operator in ("<", "<="):
        worst = max(numbers[:2])  # "a to b over n samples": b is the highest
        return worst / limit if limit > 0 else None
    if " at least once " in expected:  # "612 at +20s, peak 1450 at +34s": the peak counts
        numbers = numbers[-1:]
    if operator in (">", ">="):
        worst = min(numbers[:2])
        return limit / worst if worst > 0 else math.inf
    return None


def run_pair(
    variant: Variant, runs: int, target: str | None, full: bool, sets: list[str]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="harness-noise-") as tmp:
        argv = [
            sys.executable, "-m", "harness", "run", f"experiments/{variant.experiment}.yaml",
            "--runs-dir", tmp, "--repeat", str(runs), "--json",
            *variant.sets(shorter=not full),
            *(["--set", f"target={target}"] if target else []),
            *(a for s in sets for a in ("--set", s)),
        ]  # fmt: skip
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    try:
        document: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        message = f"{variant.label}: no JSON (exit {done.returncode}): {done.stderr}"
        raise SystemExit(message) from None
    repeat: dict[str, Any] = document["repeats"][0]
    # The runs whose checks carry a note that the host's CPU was saturated.
    repeat["saturated"] = sum(
        any(c.get("note") for c in run.get("checks", [])) for run in document["runs"]
    )
    return repeat


def report(variant: Variant, repeat: dict[str, Any]) -> tuple[int, str, list[str]]:
    """How many runs gave the expected verdict, the margin (for a pair that must hold, the
    check nearest its limit; for one that must fail, the check that must fail), and the lines
    that show the checks."""
    checks = repeat["checks"]
    failing = [c["failed"] for c in checks if c["name"] in variant.must_fail]
    if variant.expected == "held":
        right = int(repeat["held"])
    else:  # the runs in which every check that must fail did
        right = min(failing) if len(failing) == len(variant.must_fail) else 0
    lines = []
    margins: list[tuple[float, str]] = []
    for check in checks:
        found = (share(check["expected"], o) for o in check["observed"])
        shares = [s for s in found if s is not None]
        median = f"{statistics.median(shares):.2f}" if shares else "-"
        if shares and (not variant.must_fail or check["name"] in variant.must_fail):
            margins.append((statistics.median(shares), f"{median} ({check['name']})"))
        observed = "; ".join(str(o) for o in check["observed"])
        mark = " <- must fail" if check["name"] in variant.must_fail else ""
        lines.append(
            f"  {check['name']}{mark}: expects {check['expected']}; held {check['held']}, "
            f"failed {check['failed']}, inconclusive {check['inconclusive']}; "
            f"median share {median}; observed: {observed}"
        )
    margin = max(margins)[1] if margins else "-"
    return right, margin, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each pair (default 5)")
    parser.add_argument("--hogs", type=int, default=1, help="busy loops beside (default 1)")
    parser.add_argument("--target", help="run every pair on this target (default: as written)")
    parser.add_argument("--only", help="only the pairs of these experiments (comma-separated)")
    parser.add_argument(
        "--full-length", action="store_true",
        help="run the pairs at their full length, not shortened as the tests run them",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE",
        help="also passed to every run, after the pair's own (load.model=open)",
    )  # fmt: skip
    args = parser.parse_args()
    catalogue = pairs_on(args.target) if args.target else PAIRS
    only = args.only.split(",") if args.only else None
    pairs = [p for p in catalogue if only is None or p.experiment in only]
    summary = []
    with hogs(args.hogs):
        for variant in pairs:
            repeat = run_pair(variant, args.runs, args.target, args.full_length, args.set)
            right, margin, lines = report(variant, repeat)
            head = (
                f"{variant.label}: expected {variant.expected}, right in {right} of {args.runs}"
                f" (the host saturated in {repeat['saturated']})"
            )
            print(head, *lines, sep="\n", flush=True)
            summary.append(
                f"| {variant.label} | {variant.expected} | {right} of {args.runs} "
                f"| {margin} | {repeat['saturated']} |"
            )
    print(
        "\n| pair | expected | right | median share of the limit | host saturated |\n"
        "| --- | --- | --- | --- | --- |",
        *summary,
        sep="\n",
    )


if __name__ == "__main__":
    main()
