"""Benchmark: how fast, and in how much memory, `harness validate` refuses hostile files.

Each class of hostile input (an alias bomb under a kilobyte, 500 nested brackets, a file past
the size bound, a key given twice, /dev/zero, a FIFO, a fault every second of a day, a PromQL
syntax error: the one class that starts a Prometheus) is validated K times as a new process;
the table gives, per class, the exit code, the median wall time with its range, and the largest
resident memory of a run. The aim: exit 3 for each, in under 2 s and 200 MB, Python's start-up
included (about 0.7 s here).

    .venv/bin/python bench/hostile_input.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "targets" / "redis-streams.yaml"
HEAD = f"name: hostile\ntarget: {TARGET}\n"
CHECKS = "checks:\n  - {name: nothing lost, ledger: lost, expect: '== 0'}\n"


def bomb() -> str:
    levels = ["l0: &l0 [" + ", ".join(["x"] * 10) + "]"]
    levels += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return HEAD + "\n".join(levels) + "\n"


CLASSES: dict[str, Callable[[Path], Path]] = {}


def case(name: str) -> Callable[[Callable[[Path], Path]], Callable[[Path], Path]]:
    def register(make: Callable[[Path], Path]) -> Callable[[Path], Path]:
        CLASSES[name] = make
        return make

    return register


def written(folder: Path, text: str) -> Path:
    path = folder / "hostile.yaml"
    path.write_text(text)
    return path


@case("alias bomb (10^10 values, 0.5 KB)")
def _bomb(folder: Path) -> Path:
    return written(folder, bomb())


@case("500 nested brackets")
def _deep(folder: Path) -> Path:
    return written(folder, HEAD + "load: " + "[" * 500 + "]" * 500 + "\n")


@case("300,000 keys (5 MB)")
def _big(folder: Path) -> Path:
    return written(folder, HEAD + "".join(f"key{i}: {i}\n" for i in range(300_000)))


@case("a key given twice")
def _twice(folder: Path) -> Path:
    return written(folder, HEAD + "load: {rate: 1/s, duration: 1s}\nname: again\n" + CHECKS)


@case("/dev/zero")
def _zero(folder: Path) -> Path:
    return Path("/dev/zero")


@case("a FIFO")
def _fifo(folder: Path) -> Path:
    path = folder / "fifo.yaml"
    os.mkfifo(path)
    return path


@case("a fault every second of 24 h")
def _every(folder: Path) -> Path:
    timeline = "timeline:\n  - {at: 1s, for: 500ms, every: 1s, fault: pause, component: worker}\n"
    return written(folder, HEAD + "load: {rate: 1/s, duration: 24h}\n" + timeline + CHECKS)


@case("a PromQL syntax error (Prometheus parses it)")
def _promql(folder: Path) -> Path:
    check = (
        "checks:\n  - {name: bad, query: 'rate(harness_queue_depth[5s]', at: end, expect: '< 1'}\n"
    )
    return written(folder, HEAD + "load: {rate: 1/s, duration: 5s}\n" + check)


def validate(path: Path) -> tuple[int, float, int]:
    """Exit code, wall seconds, and the largest resident memory (KiB) of one validation."""
    started = time.monotonic()
    pid = os.spawnv(
        os.P_NOWAIT, sys.executable, [sys.executable, "-m", "harness", "validate", str(path)]
    )
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), time.monotonic() - started, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.chdir(ROOT)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the harness's messages; the table goes to stdout
    print(
        "| input | exit | median time | range | largest memory |\n| --- | --- | --- | --- | --- |"
    )
    for name, make in CLASSES.items():
        with tempfile.TemporaryDirectory(prefix="harness-hostile-") as tmp:
            path = make(Path(tmp))
            results = [validate(path) for _ in range(args.runs)]
        codes = sorted({code for code, _, _ in results})
        times = [seconds for _, seconds, _ in results]
        memory = max(kib for _, _, kib in results) / 1024
        print(
            f"| {name} | {', '.join(map(str, codes))} | {statistics.median(times):.2f} s "
            f"| {min(times):.2f} to {max(times):.2f} s | {memory:.0f} MB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
